"""The training loop: AdamW with warmup + cosine, weighted label-smoothed loss, early stopping on
validation macro-F1, best and last checkpoints, resumable after an interruption.

Choices and why:
- Items are drawn per epoch in proportion to their source's weight (CK+ is tiny next to FER2013
  and would be drowned out); classes are balanced in the loss by (count / mean) ** -power, a
  middle way between chasing accuracy (power 0) and chasing macro-F1 (power 1).
- Targets may be soft (FER+ votes); label smoothing then spreads a little more mass.
- Some batches use shorter windows than the spec's, because the runtime classifies a face from its
  first frame while its window is still filling.
- Input standardization (mean/std of training features) is stored inside the model, so the
  exported ONNX takes the spec's raw features.
- Fused models (spec.crop > 0) also get each item's aligned face crop, augmented on the batch
  (`train.crop_augment`) and mirrored together with its landmarks; bfloat16 autocast makes their
  CNN 2.3x faster on CPUs that have it. After training, a temperature is fitted on half of the
  validation set and its calibration error measured on the other half (`train.calibrate`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from emoview.realtime.console import stderr
from emoview.realtime.errors import InputError
from emoview.train import calibrate, checkpoint, evaluate
from emoview.train.config import Recipe, spec_of
from emoview.train.data import Context, Splits, neutral_template
from emoview.train.model import EmotionNet, ModelConfig


def input_stats(train, ctx: Context, inputs: str, spec, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = np.sort(rng.choice(len(train), size=min(len(train), 4000), replace=False))
    x = train.windows(idx, 1, None, ctx, False).reshape(len(idx), -1)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-3
    mask = np.ones(spec.feature_size, np.float32)
    points = spec.feature_size - (52 if spec.blendshapes else 0)
    if inputs == "landmarks":
        mask[points:] = 0.0
    elif inputs == "blendshapes":
        if not spec.blendshapes:
            raise InputError("inputs = \"blendshapes\" needs blendshapes = true in [spec]")
        mask[:points] = 0.0
    elif inputs == "crop":
        if not spec.crop:
            raise InputError("inputs = \"crop\" needs a crop in [spec]")
        mask[:] = 0.0  # the landmark features are zeroed: the face crop's embedding alone remains
    return mean, std, mask


def class_weights(y: np.ndarray, classes: int, power: float) -> np.ndarray:
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    w = np.where(counts > 0, (np.maximum(counts, 1) / counts[counts > 0].mean()) ** -power, 0.0)
    return (w / (w * counts).sum() * counts.sum()).astype(np.float32)  # mean weight per item = 1


def epoch_order(weight: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Each item `size * w / sum(w)` times on average (whole part always, fraction at random)."""
    expected = weight / weight.sum() * size
    counts = np.floor(expected).astype(int) + (rng.random(len(weight)) < expected % 1)
    return rng.permutation(np.repeat(np.arange(len(weight)), counts))


def batches(order: np.ndarray, size: int):
    """Consecutive batches of `order`. A last batch of a single window is left out: BatchNorm cannot
    train on one value per channel (a 1-frame window of one item), and the item comes back next epoch."""
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        if len(idx) >= 2:
            yield idx


def weighted_loss(logits, target, weights, smoothing: float):
    target = target * (1.0 - smoothing) + smoothing / target.shape[1]
    per_class = weights[None, :] * target
    return -(per_class * torch.log_softmax(logits, dim=1)).sum() / per_class.sum()


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress))


def train_run(recipe: Recipe, splits: Splits, out: Path, device: str = "cpu") -> dict:
    """Train (or resume) into `out`; returns the final metrics written to out/metrics.json."""
    cfg, spec, labels = recipe.train, spec_of(recipe), list(recipe.labels)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    eval_ctx = Context(spec, recipe.motion)
    ctx = Context(spec, recipe.motion, cfg.noise, cfg.mirror, neutral_template(splits.train, labels, spec))
    if spec.crop and getattr(splits.train, "crops", None) is None:
        raise InputError(f"recipe {recipe.name}: a model with a face crop ([spec] crop = {spec.crop}) trains on still images only")
    model_cfg = ModelConfig(features=spec.feature_size, classes=len(labels), crop=spec.crop, embedding=spec.embedding, **recipe.model)
    model = EmotionNet(model_cfg)
    model.set_input_stats(*input_stats(splits.train, eval_ctx, cfg.inputs, spec, rng))
    if cfg.encoder_from:
        _encoder_from(model, Path(cfg.encoder_from), frozen=cfg.encoder_lr == 0)
    model.to(device)
    ema = _ema(model, cfg.ema)
    weights = torch.from_numpy(class_weights(splits.train.y, len(labels), cfg.class_weight_power)).to(device)
    optimizer = torch.optim.AdamW(_parameter_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epoch_size = cfg.epoch_size or len(splits.train)
    steps = math.ceil(epoch_size / cfg.batch_size)
    warmup = max(1, int(cfg.warmup_epochs * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, cfg.epochs * steps))
    state = {"epoch": 0, "history": [], "best_f1": -1.0, "best_epoch": 0, "seconds": 0.0}
    last_path = out / checkpoint.LAST
    if last_path.is_file():
        state = _resume(last_path, recipe, model, optimizer, scheduler, rng, ema)
        stderr.print(f"resuming {out} after epoch {state['epoch']}")
    base = {"model_config": model_cfg.to_dict(), "spec": spec.to_json(), "data_summary": splits.summary,
            "recipe": recipe.to_dict()}
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        if epoch - state["best_epoch"] > cfg.patience and state["best_epoch"] > 0:
            break
        start = time.time()
        train_loss, train_acc = _one_epoch(model, splits.train, ctx, rng, optimizer, scheduler, weights, cfg, epoch_size, device, ema,
                                           recipe.crops)
        judge = ema.module if ema is not None else model  # what is validated and kept
        row = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc, "lr": scheduler.get_last_lr()[0]}
        row.update(_validate(judge.cpu(), splits, eval_ctx, labels, cfg.val_window or spec.window))
        judge.to(device)
        state["seconds"] += time.time() - start
        row["seconds"] = round(time.time() - start, 1)
        state["history"].append(row)
        improved = row["val_macro_f1"] > state["best_f1"]
        if improved:
            state["best_f1"], state["best_epoch"] = row["val_macro_f1"], epoch
            metrics = {k: v for k, v in row.items() if k.startswith(("val_", "ckplus", "holdout"))}
            checkpoint.save({**base, "state_dict": _cpu_state(judge), "metrics": metrics, "epoch": epoch}, out / checkpoint.BEST)
        state["epoch"] = epoch
        checkpoint.save({**base, "state_dict": _cpu_state(model), "epoch": epoch, "metrics": {}, "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": rng.bit_generator.state,
                         "ema_state": None if ema is None else _cpu_state(ema.module),
                         "torch_rng": torch.get_rng_state(), "state": state, "finished": False}, last_path)
        stderr.print(
            f"epoch {epoch:3d}  loss {train_loss:.3f}  train acc {train_acc:.3f}  val acc {row['val_accuracy']:.3f}  "
            f"val macro-F1 {row['val_macro_f1']:.3f}{' *' if improved else ''}  "
            + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k.endswith("holdout_accuracy"))
            + f"  ({row['seconds']} s)"
        )
    return _finish(out, splits, eval_ctx, labels, spec, state, cfg.val_window or spec.window)


def _one_epoch(model, train, ctx, rng, optimizer, scheduler, weights, cfg, epoch_size, device, ema=None, crop_cfg=None):
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from emoview.train.crop_augment import augment_crops
    from emoview.train.mixing import mix_batch

    crops = getattr(train, "crops", None) if model.encoder is not None else None

    model.train()
    if model.encoder is not None and not any(p.requires_grad for p in model.encoder.parameters()):
        model.encoder.eval()  # a frozen encoder (two-stage training) keeps its BatchNorm statistics
    order = epoch_order(train.weight, epoch_size, rng)
    total, correct, loss_sum = 0, 0, 0.0
    columns = (TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("train", total=len(order))
        for idx in batches(order, cfg.batch_size):
            window = ctx.spec.window
            short = min(cfg.short_window_max or window - 1, window - 1)
            frames = window if rng.random() < cfg.full_window_prob or window == 1 else int(rng.integers(1, short + 1))
            flip = rng.random(len(idx)) < ctx.mirror if ctx.mirror > 0 else None
            x = torch.from_numpy(train.windows(idx, frames, rng, ctx, True, flip=flip)).to(device)
            target = torch.from_numpy(train.target[idx]).to(device)
            batch_crops = None if crops is None else augment_crops(crops[idx], flip, rng, crop_cfg).to(device)
            x, batch_crops, target = mix_batch(x, batch_crops, target, rng, cfg.mix, cfg.mix_alpha)
            autocast = torch.autocast(device, dtype=torch.bfloat16) if cfg.autocast == "bf16" else contextlib.nullcontext()
            with autocast:
                logits = model.logits(x, batch_crops)
            logits = logits.float()
            loss = weighted_loss(logits, target, weights, cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1).cpu().numpy() == train.y[idx]).sum())
            total += len(idx)
            progress.advance(task, len(idx))
    return loss_sum / max(total, 1), correct / max(total, 1)


def _validate(model, splits, ctx, labels, frames) -> dict:
    result, probs = evaluate.evaluate(model, splits.val, ctx, labels, frames)
    nll = -np.log(np.clip(probs[np.arange(len(probs)), splits.val.y], 1e-7, 1.0)).mean()
    row = {"val_loss": float(nll), "val_accuracy": result["accuracy"], "val_macro_f1": result["macro_f1"]}
    for name, ds in splits.extra.items():
        extra, _ = evaluate.evaluate(model, ds, ctx, labels, frames)
        row[f"{name}_accuracy"], row[f"{name}_macro_f1"] = extra["accuracy"], extra["macro_f1"]
    return row


def _parameter_groups(model: EmotionNet, cfg) -> list[dict]:
    """A stage-one encoder that stage two fine-tunes learns at `encoder_lr` of the others' rate, so
    what it learned alone is adjusted, not overwritten."""
    if not (cfg.encoder_from and cfg.encoder_lr):
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    encoder = {id(p) for p in model.encoder.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in encoder]},
            {"params": list(model.encoder.parameters()), "lr": cfg.lr * cfg.encoder_lr}]


def _encoder_from(model: EmotionNet, path: Path, frozen: bool) -> None:
    """Stage two of two-stage training: the crop encoder of an earlier run, frozen (its BatchNorm
    statistics too: `_one_epoch` keeps it in eval mode) unless stage two fine-tunes it."""
    if model.encoder is None:
        raise InputError("[train] encoder_from needs a model with a crop")
    if not path.is_file():
        raise InputError(f"[train] encoder_from: no checkpoint at {path}")
    state = checkpoint.load(path)["state_dict"]
    encoder = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    try:
        model.encoder.load_state_dict(encoder)
    except RuntimeError as exc:
        raise InputError(f"[train] encoder_from: {path} has another crop encoder ({str(exc).splitlines()[0]})") from None
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(not frozen)


def _cpu_state(model: EmotionNet) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _ema(model, decay: float):
    """A running average of the weights (and BatchNorm statistics): steadier than the last step's."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _resume(path, recipe, model, optimizer, scheduler, rng, ema=None) -> dict:
    from emoview.train.config import recipe_from_dict

    payload = checkpoint.load(path)
    try:  # through the dataclasses, so settings added since the run started compare at their defaults
        same = recipe_from_dict(payload.get("recipe") or {}).to_dict() == recipe.to_dict()
    except InputError:
        same = False
    if not same:
        raise InputError(f"{path.parent} holds a run with another configuration; pass --overwrite or another --out")
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    rng.bit_generator.state = payload["rng"]
    torch.set_rng_state(payload["torch_rng"])
    if ema is not None and payload.get("ema_state") is not None:
        ema.module.load_state_dict(payload["ema_state"])
    return payload["state"]


def _finish(out: Path, splits, ctx, labels, spec, state, frames: int) -> dict:
    """Score the best checkpoint on every evaluation set; write metrics.json and the plots.

    "val" uses the validation window (`frames`); the other window length is reported beside it,
    because `emoview eval` classifies stills as 1-frame windows and live video uses the spec's.
    """
    model, _, rest = checkpoint.load_run(out)
    metrics = {"best_epoch": rest["epoch"], "epochs_run": state["epoch"], "train_seconds": round(state["seconds"], 1),
               "val_frames": frames}
    val, probs = evaluate.evaluate(model, splits.val, ctx, labels, frames)
    metrics["calibration"] = calibrate.calibrate(probs, splits.val.y)
    payload = checkpoint.load(out / checkpoint.BEST)
    # probs were made at the model's current temperature (1 after training): the fit scales it
    payload["model_config"]["temperature"] = model.config.temperature * metrics["calibration"]["temperature"]
    checkpoint.save(payload, out / checkpoint.BEST)
    model, _, rest = checkpoint.load_run(out)
    metrics["val"] = val
    other = spec.window if frames != spec.window else 1
    alt, _ = evaluate.evaluate(model, splits.val, ctx, labels, other)
    metrics[f"val_window_{other}"] = {k: alt[k] for k in ("accuracy", "macro_f1", "all_images") if k in alt}
    for name, ds in splits.extra.items():
        metrics[name], _ = evaluate.evaluate(model, ds, ctx, labels, frames)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    # the validation windows themselves, so `emoview export --int8` can measure its accuracy change
    windows = splits.val.windows(np.arange(len(splits.val)), frames, None, ctx, False)
    val_crops = getattr(splits.val, "crops", None)
    extra_arrays = {} if val_crops is None or model.encoder is None else {"crops": val_crops}
    np.savez_compressed(out / "val_features.npz", windows=windows, labels=splits.val.y, **extra_arrays)
    if model.encoder is not None:
        from emoview.train.crop_grid import save_grid

        save_grid(splits.train.crops, out / "crops_train.png", "training crops (aligned, before augmentation)")
    (out / "history.json").write_text(json.dumps(state["history"], indent=2))
    evaluate.plot_confusion(val["confusion"], labels, out / "confusion_val.png",
                            f"val: accuracy {val['accuracy']:.3f}, macro-F1 {val['macro_f1']:.3f}")
    for name in splits.extra:
        m = metrics[name]
        evaluate.plot_confusion(m["confusion"], labels, out / f"confusion_{name}.png",
                                f"{name}: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}")
    evaluate.plot_curves(state["history"], out / "curves.png")
    payload = checkpoint.load(out / checkpoint.BEST)
    summary = {"val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"], "val_frames": frames}
    summary.update({f"{n}_accuracy": metrics[n]["accuracy"] for n in splits.extra})
    payload["metrics"] = {**summary, "val": val, "calibration": metrics["calibration"], **{name: metrics[name] for name in splits.extra}}
    checkpoint.save(payload, out / checkpoint.BEST)
    last = checkpoint.load(out / checkpoint.LAST)
    last["finished"] = True
    checkpoint.save(last, out / checkpoint.LAST)
    return metrics
