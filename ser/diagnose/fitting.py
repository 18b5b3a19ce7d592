"""Training against validation curves, read back from a run's TensorBoard events, and what they
show about fitting. Epochs are numbered from 1 everywhere (epoch 1 is the first one trained)."""

from __future__ import annotations

from pathlib import Path

CURVES = ("train/ua", "val/ua", "train/loss", "val/loss")
RISE = 0.01  # a validation-loss rise smaller than this is noise, not a trend
STILL = 0.05  # training loss falling by more than this share over the last quarter of epochs: not converged


def read_curves(run_dir: Path) -> dict[str, list[float]]:
    """Per-epoch values of ``train/ua``, ``val/ua``, ``train/loss``, ``val/loss`` from ``<run>/tensorboard``.

    Missing events give empty lists (the report then says the curves are unavailable).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = Path(run_dir) / "tensorboard"
    if not logdir.is_dir():
        return {k: [] for k in CURVES}
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0}).Reload()
    tags = set(events.Tags()["scalars"])
    return {k: [e.value for e in events.Scalars(k)] if k in tags else [] for k in CURVES}


def fitting_evidence(curves: dict[str, list[float]]) -> dict | None:
    """From the curves: the best validation epoch (1-based) and the UAs there, and whether validation
    loss turned upwards (``val_loss_rose``: lowest before the last epoch and more than RISE above
    that at the end). The training UA of the curves is measured in train mode (dropout, random
    crops, augmentation), so it is not compared with validation to judge fitting: the diagnosis
    measures that on the training speakers in eval mode (``train_ua_eval`` in the report)."""
    train, val = curves.get("train/ua", []), curves.get("val/ua", [])
    n = min(len(train), len(val))
    if not n:
        return None
    best = max(range(n), key=lambda e: val[e])
    val_loss = curves.get("val/loss", [])
    low = min(range(len(val_loss)), key=lambda e: val_loss[e]) if val_loss else None
    rise = float(val_loss[-1] - val_loss[low]) if val_loss else 0.0
    train_loss = curves.get("train/loss", [])
    tail = max(1, len(train_loss) // 4)  # the last quarter of training
    late = (train_loss[-tail - 1] - train_loss[-1]) / max(abs(train_loss[-tail - 1]), 1e-9) \
        if len(train_loss) > tail else None
    return {
        "epochs": n,
        "best_epoch": best + 1,
        "train_ua_curve": float(train[best]),
        "val_ua": float(val[best]),
        "final_val_ua": float(val[n - 1]),
        "val_loss_min_epoch": None if low is None else low + 1,
        "val_loss_rise": rise,
        "val_loss_rose": bool(val_loss) and low < len(val_loss) - 1 and rise > RISE,
        "train_loss_late_drop": None if late is None else float(late),
        # more epochs would still have helped: validation loss lowest at the end, or training loss still falling
        "still_improving": bool((low is not None and low >= len(val_loss) - 2) or (late is not None and late > STILL)),
    }


def loss_trend(fit: dict) -> str:
    """One sentence on validation loss that claims only what the curve shows."""
    if fit.get("val_loss_min_epoch") is None:
        return "No validation loss was logged."
    if fit["val_loss_rose"]:
        return (f"Validation loss was lowest at epoch {fit['val_loss_min_epoch']} of {fit['epochs']} and rose "
                f"{fit['val_loss_rise']:.3f} by the last epoch.")
    if fit["val_loss_min_epoch"] >= fit["epochs"]:
        return f"Validation loss was still falling at the last epoch ({fit['epochs']}): more epochs may help."
    return (f"Validation loss was lowest at epoch {fit['val_loss_min_epoch']} of {fit['epochs']} and stayed "
            f"within {RISE} of it after: flat, not rising.")


def training_seconds(run_dir: Path) -> float:
    """Seconds between the first and the last event of the run's TensorBoard log (its training and test
    time); NaN without events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = Path(run_dir) / "tensorboard"
    if not logdir.is_dir():
        return float("nan")
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0}).Reload()
    times = [e.wall_time for tag in events.Tags()["scalars"] for e in events.Scalars(tag)]
    return float(max(times) - min(times)) if times else float("nan")
