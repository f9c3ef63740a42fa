"""The same jobs as `workers.LocalPool`, run by Ray actors: one machine's cores, or a cluster's.

Why actors and not Ray tasks: a task would load the face and emotion models for every video; an
actor builds the task object (`factory(setup)`) once and keeps it. Each actor holds one job at a
time, so an actor that dies (its node lost, a crash, a kill) costs exactly that job: it is retried
on a fresh actor up to `workers.MAX_ATTEMPTS` times, then reported as failed, as locally.

The model files named in `setup["files"]` travel through Ray's object store: each actor writes
them into a temporary folder of its own node, so nobody copies models to the cluster's machines.
Inputs are read by the actors at the paths given (shared storage on a cluster: see
benchmarks/SCALE.md); results come back to this process, which writes every output itself.

Ray is an optional extra: `import_ray()` says in one line how to get it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from emoview.realtime.errors import EmoviewError, InputError
from emoview.realtime.workers import Attempts, load_factory, peak_rss_mb, pin_threads, run_job, usable_cores

INSTALL_HINT = "pip install 'emoview[ray]'"
FORWARDED_ENV_PREFIX = "EMOVIEW_TEST_"  # test hooks reach the actors; nothing else is needed there
POLL_S = 0.5


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


class _TaskActor:
    """Runs in a Ray worker process: materializes the shipped files, then builds the task once."""

    def __init__(self, factory: str, setup: dict, shipped: dict, threads: int) -> None:
        import ray  # in an actor: Ray is there

        pin_threads(threads)
        self._folder = tempfile.mkdtemp(prefix="emoview-actor-")
        files = dict(setup.get("files", {}))
        for name, (file_name, ref) in shipped.items():
            path = Path(self._folder) / name / file_name  # the file's own name: some loaders look at it
            path.parent.mkdir()
            path.write_bytes(ray.get(ref))  # nested in a dict, so not resolved by Ray itself
            files[name] = str(path)
        self._task = load_factory(factory)({**setup, "files": files})

    def ready(self) -> float:
        return peak_rss_mb()

    def run(self, payload: dict) -> dict:
        return run_job(self._task, payload)

    def close(self) -> None:
        close = getattr(self._task, "close", None)
        if close is not None:
            close()
        shutil.rmtree(self._folder, ignore_errors=True)


class RayPool:
    """`factory(setup)`'s task on Ray actors; `address`: None starts a local Ray on this machine,
    "auto" joins the running cluster, or a `ray://` / `host:port` address."""

    name = "ray"

    def __init__(self, factory: str, setup: dict, workers: int | None = None, threads: int = 1, address: str | None = None) -> None:
        self.factory = factory
        self.setup = setup
        self.workers = workers
        self.threads = threads
        self.address = address
        self.startup_s: float | None = None  # ray.init until every actor has its models loaded

    def _init(self, ray) -> bool:
        """Starts or joins Ray unless this process already did; True if we must shut it down."""
        if ray.is_initialized():
            return False
        kwargs = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
        try:
            if self.address is None:
                ray.init(num_cpus=usable_cores(), **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = "a local Ray" if self.address is None else f"Ray at {self.address}"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot start or reach {where} ({first[:160]}); check `ray status`, or drop --ray") from None
        return True

    def _ship(self, ray) -> dict:
        return {name: (Path(path).name, ray.put(Path(path).read_bytes())) for name, path in self.setup.get("files", {}).items()}

    def run(self, payloads: list[dict], on_done: Callable[[int, dict, int], None]) -> None:
        """Runs every payload; `on_done(index, result, attempts)` in this process as each finishes."""
        if not payloads:
            return
        ray = import_ray()
        from ray.exceptions import RayActorError

        started = time.perf_counter()
        owned = self._init(ray)
        actors: dict = {}  # actor handle -> job it holds (or None)
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            fit = max(1, cpus // self.threads)
            if self.workers and self.workers > fit:  # actors Ray cannot place would be waited for forever
                raise EmoviewError(
                    f"--workers {self.workers} actors x --threads {self.threads} need {self.workers * self.threads} CPUs and "
                    f"this Ray cluster has {cpus}; use at most --workers {fit}"
                )
            count = min(self.workers or fit, len(payloads))
            env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIX)}
            options = dict(num_cpus=self.threads, max_restarts=0, max_task_retries=0)
            if env:
                options["runtime_env"] = {"env_vars": env}
            actor_class = ray.remote(_TaskActor).options(**options)
            shipped = self._ship(ray)

            def new_actor():
                return actor_class.remote(self.factory, self.setup, shipped, self.threads)

            fresh = [new_actor() for _ in range(count)]
            try:
                ray.get([actor.ready.remote() for actor in fresh])
            except RayActorError as exc:
                raise EmoviewError(f"Ray workers could not start: {_cause(exc)}") from None
            self.startup_s = time.perf_counter() - started
            actors = dict.fromkeys(fresh)
            pending = list(range(len(payloads)))
            attempts = Attempts()
            running: dict = {}  # object ref -> actor
            while pending or running:
                for actor, job in list(actors.items()):
                    if job is None and pending:
                        job = actors[actor] = pending.pop(0)
                        attempts.start(job)
                        running[actor.run.remote(payloads[job])] = actor
                done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                for ref in done:
                    actor = running.pop(ref)
                    job = actors[actor]
                    try:
                        result = ray.get(ref)
                    except RayActorError as exc:  # the actor (its process or node) died: a fresh one, the job again
                        del actors[actor]
                        failed = attempts.lost(job, pending, f"its Ray worker died ({_cause(exc)})")
                        if failed is not None:
                            on_done(job, failed, attempts.count[job])
                        if pending:
                            actors[new_actor()] = None
                        continue
                    actors[actor] = None
                    on_done(job, result, attempts.count[job])
            with contextlib.suppress(Exception):  # closing is a courtesy: every result is in by now
                ray.get([actor.close.remote() for actor in actors], timeout=30)
        finally:
            for actor in actors:
                ray.kill(actor)
            if owned:
                ray.shutdown()


def _cause(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
