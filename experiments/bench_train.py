"""Training speed on EmoDB: utterances per second, seconds per epoch and the share of step time
spent waiting for data, for each encoder, through the real config and data path.

    python experiments/bench_train.py [--emodb DIR] [--epochs 2] [--models cnn,lstm,cnn_lstm] [override ...]

Extra arguments are Hydra overrides (``trainer=gpu``, ``loader.num_workers=2``, ``loader.batch_size=16``,
``compile=true``). The first epoch is a warm-up; the figures are from the later ones. Data wait
is the time between one training step's end and the next one's start (the loader fetching and
collating a batch, and the copy to the device), against the whole epoch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra.utils import instantiate  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from ser.build import build_datamodule, build_module  # noqa: E402
from ser.callbacks import FitFeatureNorm  # noqa: E402
from ser.cli import compose_config  # noqa: E402
from ser.data.upstream_cache import Upstream  # noqa: E402
from ser.train import reuse_freed_memory  # noqa: E402

DEFAULT_EMODB = os.environ.get("SER_EMODB", str(ROOT.parent / "shared" / "data" / "emodb"))


class StepTimer(L.Callback):
    """Per epoch: wall time, time inside training steps, time waiting for the next batch."""

    def __init__(self):
        self.epochs: list[dict] = []

    def on_train_epoch_start(self, trainer, module):
        self.epoch = {"start": time.perf_counter(), "wait": 0.0, "step": 0.0, "items": 0}
        self.last_end = self.epoch["start"]

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        now = time.perf_counter()
        self.epoch["wait"] += now - self.last_end
        self.step_start = now
        self.epoch["items"] += len(batch["labels"])

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.last_end = time.perf_counter()
        self.epoch["step"] += self.last_end - self.step_start

    def on_train_epoch_end(self, trainer, module):
        self.epoch["wall"] = time.perf_counter() - self.epoch["start"]
        self.epochs.append(self.epoch)


def bench(model: str, overrides: list[str], epochs: int) -> dict:
    cfg = compose_config("train", ["data=emodb", f"model={model}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(ROOT / "runs" / "bench_train")
    L.seed_everything(cfg.seed)
    dm = build_datamodule(cfg)
    dm.load()
    dm.use_fold(instantiate(cfg.split).folds(dm.corpus.utterances)[0])
    module = build_module(cfg, dm.corpus.class_names, dm.train_class_counts())
    timer = StepTimer()
    trainer = instantiate(cfg.trainer, max_epochs=epochs, logger=False, callbacks=[timer, FitFeatureNorm()],
                          enable_checkpointing=False,
                          limit_val_batches=0, num_sanity_val_steps=0, enable_progress_bar=False,
                          enable_model_summary=False)
    # a frozen upstream: computed once, before timing
    dm.use_upstream(Upstream.of(module.frontend, trainer.strategy.root_device, dm.corpus.upstream_cache))
    trainer.fit(module, datamodule=dm)
    later = timer.epochs[1:] or timer.epochs
    wall = sum(e["wall"] for e in later) / len(later)
    items = later[0]["items"]
    return {"model": model, "utt_per_s": items / wall, "s_per_epoch": wall,
            "wait_share": sum(e["wait"] for e in later) / sum(e["wall"] for e in later), "items": items,
            "params": sum(p.numel() for p in module.parameters())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emodb", default=DEFAULT_EMODB)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--models", default="cnn,lstm,cnn_lstm")
    args, overrides = p.parse_known_args()
    reuse_freed_memory()
    overrides = [f"data.root={args.emodb}", *overrides]
    rows = [bench(m, overrides, args.epochs) for m in args.models.split(",")]
    device = "cuda" if any("gpu" in o for o in overrides) else "cpu"
    print(f"EmoDB training split ({rows[0]['items']} utterances, crops of at most loader.max_train_s), {device}, "
          f"torch threads {torch.get_num_threads()}, overrides {overrides[1:] or 'none'}")
    print(f"{'encoder':10s} {'params':>9s} {'utt/s':>8s} {'s/epoch':>8s} {'data wait':>10s}")
    for r in rows:
        wait = 100 * r["wait_share"]
        print(f"{r['model']:10s} {r['params']:9d} {r['utt_per_s']:8.1f} {r['s_per_epoch']:8.2f} {wait:9.1f}%")


if __name__ == "__main__":
    main()
