"""``train(cfg)``: one experiment from a composed Hydra config to ``metrics.json``."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ser.cv import summarize, write_summary
from ser.data.datamodule import SERDataModule
from ser.data.splits import Fold
from ser.models.module import SERModule

log = logging.getLogger(__name__)


def build_module(cfg: DictConfig, class_names: list[str], class_counts: list[int]) -> SERModule:
    """Frontend, encoder, loss and optimizer from the config; the head is sized by the classes."""
    frontend = instantiate(cfg.features)
    encoder = instantiate(cfg.model, in_features=frontend.out_features)
    return SERModule(
        frontend=frontend,
        encoder=encoder,
        loss=instantiate(cfg.loss, class_counts=class_counts),
        class_names=class_names,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        head_dropout=cfg.module.head_dropout,
        augment=instantiate(cfg.augment) if cfg.get("augment") else None,
        config=OmegaConf.to_container(cfg, resolve=True),
    )


def fit_fold(cfg: DictConfig, dm: SERDataModule, fold: Fold, run_dir: Path) -> tuple[dict[str, float], list]:
    """Train on one fold, test its best checkpoint; returns its test metrics and confusion counts."""
    dm.use_fold(fold)
    module = build_module(cfg, dm.class_names, dm.train_class_counts())
    logger = instantiate(cfg.logger, save_dir=str(run_dir))
    callbacks = [instantiate(c, **({"dirpath": str(run_dir / "checkpoints")} if "dirpath" in c else {}))
                 for c in cfg.callbacks.values()]
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks, default_root_dir=str(run_dir))
    log.info("fold %s: %d train / %d val / %d test utterances, test speakers %s",
             fold.name, len(fold.train), len(fold.val), len(fold.test), fold.test_speakers)
    trainer.fit(module, datamodule=dm)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(module, datamodule=dm, ckpt_path=best or None, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    best_val = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    if best_val is not None:
        metrics["val/ua"] = float(best_val)  # the best validation UA: what sweeps select on
    metrics = dict(sorted(metrics.items()))
    if trainer.is_global_zero:
        hp = {f"hp/test_{k}": metrics[f"test/{k}"] for k in ("ua", "wa", "macro_f1")}
        if best_val is not None:
            hp["hp/val_ua"] = float(best_val)
        logger.log_hyperparams(module.hparams, metrics=hp)
        logger.finalize("success")
    return metrics, module.last_confusion["test"].tolist()


def cross_validate(cfg: DictConfig, dm: SERDataModule, folds: list[Fold], run_dir: Path) -> dict[str, float]:
    """Every fold in its own ``fold_<name>/``, then the summaries; returns the mean metrics."""
    results, start = [], time.monotonic()
    for i, fold in enumerate(folds):
        fold_dir = run_dir / f"fold_{fold.name}"
        eta = _eta(start, i, len(folds))
        log.info("fold %d/%d (%s, test speakers %s)%s", i + 1, len(folds), fold.name, fold.test_speakers, eta)
        L.seed_everything(cfg.seed, workers=True)
        metrics, confusion = fit_fold(cfg, dm, fold, fold_dir)
        (fold_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        results.append({"fold": fold.name, "test_speakers": fold.test_speakers, "metrics": metrics, "confusion": confusion})
        log.info("fold %s: test UA %.3f WA %.3f", fold.name, metrics["test/ua"], metrics["test/wa"])
    summary = summarize(results, dm.class_names)
    summary["wall_time_s"] = round(time.monotonic() - start, 1)
    write_summary(run_dir, summary, f"{cfg.split._target_.rsplit('.', 1)[-1]} on {dm.corpus.name}")
    mean, std = summary["mean"], summary["std"]
    log.info("%d folds: UA %.3f ± %.3f  WA %.3f ± %.3f  (%s)", len(folds), mean["test/ua"], std["test/ua"],
             mean["test/wa"], std["test/wa"], run_dir / "cv_summary.md")
    return mean


def _eta(start: float, done: int, total: int) -> str:
    if not done:
        return ""
    left = (time.monotonic() - start) / done * (total - done)
    return f", about {left / 60:.1f} min left"


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test as the config says; writes ``metrics.json`` to ``cfg.paths.output_dir``.

    Returns the test metrics of the best checkpoint (``test/ua``, ``test/wa``, ``test/macro_f1``,
    ``test/recall/<class>``). With several folds (``split=loso|kfold``) each fold trains in
    ``fold_<name>/`` and the returned metrics are the means over folds, also summarised in
    ``cv_summary.json`` and ``cv_summary.md``.
    """
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(run_dir, os.W_OK):
        raise PermissionError(f"paths.output_dir={run_dir} is not writable; choose another with hydra.run.dir=...")
    L.seed_everything(cfg.seed, workers=True)
    dm: SERDataModule = instantiate(cfg.data)
    dm.prepare_data()
    dm.load()
    if dm.skipped:
        (run_dir / "skipped_files.json").write_text(json.dumps(dm.skipped, indent=2))
    folds = instantiate(cfg.split).folds(dm.utterances)
    if len(folds) == 1 and cfg.split.get("fold") is None:
        metrics, _ = fit_fold(cfg, dm, folds[0], run_dir)
    else:
        metrics = cross_validate(cfg, dm, folds, run_dir)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("test UA %.3f  WA %.3f  macro-F1 %.3f  -> %s", metrics["test/ua"], metrics["test/wa"],
             metrics["test/macro_f1"], run_dir / "metrics.json")
    return metrics
