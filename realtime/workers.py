"""Many jobs over worker processes: one task object per worker, built once, then one job at a time.

Why a small supervisor of our own instead of `concurrent.futures` or `multiprocessing.Pool`:
- a worker that dies (out of memory, a crash in native code, `kill -9`) must cost one job, not the
  batch: ProcessPoolExecutor marks the whole pool broken, and Pool silently loses the job and hangs.
  Here each worker holds at most one job, so a dead worker's job is known; it is retried on a fresh
  worker a bounded number of times, then reported as failed.
- MediaPipe is not fork-safe, so workers are spawned and build their models themselves
  (`factory(setup)` runs inside the worker), and each has its own ONNX Runtime session.
- threads are pinned per worker (OpenMP, BLAS, OpenCV; ONNX Runtime's by the task's own setting), so
  workers x threads never exceed the cores: oversubscribed cores only take turns, and slower.
- nothing queues up: each worker has one pipe and holds one job at a time (one job out, one result
  back), so a worker killed mid-write cannot wedge a queue that the others share.
- Ctrl-C reaches only this process (workers run in their own process group): it stops the pool,
  kills the workers and re-raises, so the caller can write what was finished. Nothing a worker
  computes is written by the worker; results come back and the caller writes them whole.

A task is any callable `factory(setup) -> task` with `task(payload) -> dict` and optionally
`task.close()`; `factory` is named "module:attribute" so a spawned worker can import it. The Ray
backend (`ray_backend.py`) runs the very same tasks as actors.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import resource
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable

from emoview.realtime.cores import share_cores
from emoview.realtime.errors import EmoviewError

MAX_ATTEMPTS = 3  # a job whose worker dies this many times is reported as failed
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
POLL_S = 0.5  # how often a waiting supervisor looks for dead workers


def usable_cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(threads: int = 1) -> int:
    """As many workers as the cores allow, each using `threads` threads for the model."""
    return max(1, usable_cores() // max(1, threads))


def check_workers(workers: int, threads: int) -> None:
    """Refuse more busy threads than cores: they would only take turns, and every worker slows."""
    cores = usable_cores()
    if workers * threads > cores:
        raise EmoviewError(
            f"--workers {workers} x --threads {threads} would run {workers * threads} model threads on {cores} cores; "
            f"use at most --workers {max(1, cores // threads)} (or fewer --threads)"
        )


def load_factory(name: str) -> Callable[[dict], Any]:
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def pin_threads(threads: int) -> None:
    """How a worker uses the cores: the thread pools of the native libraries it loads, set before
    they load; and no core of its own for its landmarker (`cores.share_cores`), as its siblings
    have landmarkers too."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    share_cores()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if os.uname().sysname == "Darwin" else peak / 1024, 1)


def run_job(task, payload: dict) -> dict:
    """One job in a worker: any exception is that job's failure, never the worker's end."""
    try:
        result = task(payload)
    except Exception as exc:  # noqa: BLE001 - one bad input is one failed row
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    result["peak_rss_mb"] = peak_rss_mb()
    result["worker_pid"] = os.getpid()
    return result


def _worker_main(slot: int, factory: str, setup: dict, threads: int, conn, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.setpgrp()  # the terminal's Ctrl-C goes to the supervisor alone, which stops the pool
    except OSError:
        pass
    pin_threads(threads)
    try:
        task = load_factory(factory)(setup)
    except BaseException as exc:  # noqa: BLE001 - said once by the supervisor, which stops the pool
        conn.send(("init_failed", str(exc) or type(exc).__name__))
        return
    conn.send(("ready", None))
    try:
        while True:
            if not conn.poll(1.0):
                if os.getppid() != parent:  # the supervisor is gone: nobody wants our results
                    return
                continue
            job = conn.recv()
            if job is None:
                return
            job_id, payload = job
            conn.send(("done", (job_id, run_job(task, payload))))
    except (EOFError, OSError):  # the supervisor closed our pipe: stop
        return
    finally:
        close = getattr(task, "close", None)
        if close is not None:
            close()


@dataclass
class _Worker:
    process: Any
    conn: Any  # our end of its pipe: a job out, its result back (one at a time, so never a backlog)
    ready: bool = False
    job: int | None = None  # the job it holds


@dataclass
class Attempts:
    """How often each job was started; a job that reaches MAX_ATTEMPTS without a result fails."""

    count: dict[int, int] = field(default_factory=dict)

    def start(self, job_id: int) -> None:
        self.count[job_id] = self.count.get(job_id, 0) + 1

    def lost(self, job_id: int, pending: list[int], what: str) -> dict | None:
        """A worker died holding `job_id`: queue it again (None), or its failed result when out of attempts."""
        if self.count.get(job_id, 0) < MAX_ATTEMPTS:
            pending.insert(0, job_id)
            return None
        return {"status": "failed", "error": f"{what} while processing it, {self.count[job_id]} times; giving up on it"}


class LocalPool:
    """`workers` spawned processes running `factory(setup)`'s task; see the module's docstring."""

    name = "local"

    def __init__(self, factory: str, setup: dict, workers: int, threads: int = 1) -> None:
        self.factory = factory
        self.setup = setup
        self.workers = workers
        self.threads = threads
        self.startup_s: float | None = None  # start to every worker ready
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Worker | None] = [None] * workers
        self._early_deaths = 0

    def _spawn(self, slot: int) -> None:
        ours, theirs = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(slot, self.factory, self.setup, self.threads, theirs, os.getpid()),
            name=f"emoview-worker-{slot}",
            daemon=True,
        )
        process.start()
        theirs.close()  # the worker's end lives in the worker: its death is then EOF on ours
        self._slots[slot] = _Worker(process, ours)

    def _busy(self) -> bool:
        return any(w is not None and w.job is not None for w in self._slots)

    def run(self, payloads: list[dict], on_done: Callable[[int, dict, int], None]) -> None:
        """Runs every payload; `on_done(index, result, attempts)` in this process as each finishes."""
        if not payloads:
            return
        started = time.perf_counter()
        pending = list(range(len(payloads)))
        attempts = Attempts()
        try:
            for slot in range(min(self.workers, len(payloads))):
                self._spawn(slot)
            while pending or self._busy():
                for worker in self._slots:
                    if worker is not None and worker.ready and worker.job is None and pending:
                        worker.job = pending.pop(0)
                        attempts.start(worker.job)
                        worker.conn.send((worker.job, payloads[worker.job]))
                live = [w for w in self._slots if w is not None]
                ready = wait([w.conn for w in live] + [w.process.sentinel for w in live], timeout=POLL_S)
                for worker in live:
                    if worker.conn in ready:
                        self._receive(worker, attempts, on_done, started)
                self._bury_dead(pending, attempts, on_done)
        finally:
            self._stop()

    def _receive(self, worker: _Worker, attempts: Attempts, on_done, started: float) -> bool:
        """One message from `worker`; False when its pipe is closed (it died: `_bury_dead` sees to its job)."""
        try:
            kind, body = worker.conn.recv()
        except (EOFError, OSError):
            return False
        if kind == "init_failed":
            raise EmoviewError(f"a worker could not start: {body}")
        if kind == "ready":
            worker.ready = True
            if self.startup_s is None and all(w is None or w.ready for w in self._slots):
                self.startup_s = time.perf_counter() - started
            return True
        job_id, result = body
        worker.job = None
        on_done(job_id, result, attempts.count[job_id])
        return True

    def _bury_dead(self, pending: list[int], attempts: Attempts, on_done) -> None:
        """Workers that died: their job goes back in line (or fails), and a fresh worker takes the slot."""
        for slot, worker in enumerate(self._slots):
            if worker is None or worker.process.exitcode is None:
                continue
            while worker.job is not None and worker.conn.poll():  # a result sent just before it died still counts
                if not self._receive(worker, attempts, on_done, 0.0):
                    break
            code = worker.process.exitcode
            worker.process.join()
            worker.conn.close()
            self._slots[slot] = None
            if not worker.ready:
                self._early_deaths += 1
                if self._early_deaths > MAX_ATTEMPTS * self.workers:
                    raise EmoviewError(f"worker processes die while starting (exit code {code}); run with --workers 1 --debug to see why")
            if worker.job is not None:
                failed = attempts.lost(worker.job, pending, f"its worker process died (exit code {code})")
                if failed is not None:
                    on_done(worker.job, failed, attempts.count[worker.job])
            if pending or self._busy():
                self._spawn(slot)

    def _stop(self) -> None:
        """Normal end: each idle worker is told to stop and closes its models; otherwise (Ctrl-C,
        an error) workers are killed: they hold nothing that needs finishing."""
        live = [w for w in self._slots if w is not None]
        for worker in live:
            if worker.process.exitcode is None and worker.job is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 5.0
        for worker in live:
            if worker.job is None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._slots = [None] * self.workers


def make_pool(factory: str, setup: dict, workers: int | None, threads: int = 1, ray: str | None = None):
    """The backend a command asked for: `ray` ("local", "auto" or an address) for Ray actors, else
    local processes (default: as many as the cores allow); workers x threads never exceed the cores
    of this machine (a cluster's actors ask Ray for `threads` CPUs each instead)."""
    if ray:
        from emoview.realtime.ray_backend import RayPool, import_ray

        import_ray()  # without Ray: one line on how to get it, before any work
        return RayPool(factory, setup, workers=workers, threads=threads, address=None if ray == "local" else ray)
    workers = workers or default_workers(threads)
    check_workers(workers, threads)
    return LocalPool(factory, setup, workers=workers, threads=threads)
