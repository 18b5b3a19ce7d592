"""Training against validation curves, read back from a run's TensorBoard events."""

from __future__ import annotations

from pathlib import Path

CURVES = ("train/ua", "val/ua", "train/loss", "val/loss")


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
    """Best validation epoch, train and val UA there, the gap, and where val loss bottomed out."""
    train, val = curves.get("train/ua", []), curves.get("val/ua", [])
    n = min(len(train), len(val))
    if not n:
        return None
    best = max(range(n), key=lambda e: val[e])
    val_loss = curves.get("val/loss", [])
    loss_min = min(range(len(val_loss)), key=lambda e: val_loss[e]) if val_loss else None
    return {
        "epochs": n,
        "best_epoch": best,
        "train_ua": float(train[best]),
        "val_ua": float(val[best]),
        "gap": float(train[best] - val[best]),
        "final_train_ua": float(train[n - 1]),
        "final_val_ua": float(val[n - 1]),
        "val_loss_min_epoch": loss_min,
        "val_loss_rise": float(val_loss[-1] - val_loss[loss_min]) if val_loss else 0.0,
    }
