"""``train(cfg)``: one experiment from a composed Hydra config to ``metrics.json`` (the run folder: ``ser.rundir``)."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import sys
import time
import uuid
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from ser import rundir
from ser.build import build_datamodule, build_frontend, build_module
from ser.calibrate import fit_temperature, inner_folds, write_temperature
from ser.callbacks import AverageLastEpochs, FitFeatureNorm
from ser.cli import UserError, short
from ser.cv import summarize, write_summary
from ser.data.datamodule import SERDataModule
from ser.data.splits import Fold
from ser.data.upstream_cache import Upstream
from ser.models.module import SERModule
from ser.models.pipeline import predict
from ser.quiet import silence_known_noise

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 200 * 2**20  # checkpoints, events and summaries of a run need far less; below this, stop at once
# A frozen upstream stays in eval mode through training, by design (no dropout, no layer drop).
EVAL_MODE_UPSTREAM = r"Found \d+ module\(s\) in eval mode at the start of training"


def is_rank_zero() -> bool:
    """True in the process that writes results (always, without DDP)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def write_json(path: Path, data) -> None:
    """``rundir.write_json``, from rank 0 only."""
    if is_rank_zero():
        rundir.write_json(path, data)


def check_output_dir(run_dir: Path) -> None:
    """Fail at start, not after an hour, when results could not be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(
            f"paths.output_dir={run_dir} is not writable ({err.strerror or err}); choose another with hydra.run.dir=..."
        ) from err
    free = shutil.disk_usage(run_dir).free
    if free < MIN_FREE_BYTES:
        raise OSError(f"paths.output_dir={run_dir}: only {free / 2**20:.0f} MiB free on that disk; checkpoints need "
                      f"at least {MIN_FREE_BYTES / 2**20:.0f} MiB. Free some space or choose hydra.run.dir=...")


def check_compatible(ckpt: Path, cfg: DictConfig, class_names: list[str]) -> None:
    """A checkpoint resumed or reused under ``cfg`` must have the same classes and frontend; say which differs."""
    stored = torch.load(ckpt, map_location="cpu", weights_only=True).get("hyper_parameters", {})
    if list(stored.get("class_names", [])) != list(class_names):
        raise ValueError(f"{ckpt}: trained on classes {list(stored.get('class_names', []))}, but this config gives "
                         f"{list(class_names)} (data.labels / data.merge / data=); start a new run or restore them")
    old = stored.get("config", {}).get("features", {})
    new = OmegaConf.to_container(cfg.features, resolve=True)
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        pairs = ", ".join(f"features.{k}: {old.get(k)!r} (checkpoint) vs {new.get(k)!r} (config)" for k in diff)
        raise ValueError(f"{ckpt}: its frontend differs from this config's: {pairs}; start a new run or restore them")


def make_trainer(cfg: DictConfig, folder: Path, logger=False, select: bool = True, keep: bool = True,
                 **options) -> L.Trainer:
    """The recipe's trainer and callbacks, writing into ``folder`` (checkpoints in ``folder/checkpoints``), with
    ``FitFeatureNorm`` (the normalisation statistics of the training split) last.

    ``select=False``: no checkpoint is chosen on validation speakers (there are none; the last or averaged weights
    are tested, and ``last.ckpt`` is kept for resuming). ``keep=False``: no checkpoint is written at all (the
    inner folds of calibration). Without a ``logger``, the learning-rate monitor is left out. ``options`` go to
    the trainer (``limit_val_batches=0``, ...).
    """
    callbacks = [instantiate(c, **({"dirpath": str(folder / rundir.CHECKPOINTS)} if "dirpath" in c else {}))
                 for c in cfg.callbacks.values()]
    if logger is False:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    for c in callbacks:
        if isinstance(c, ModelCheckpoint) and (not keep or (c.monitor and not select)):
            c.monitor, c.save_top_k = None, 0
            c.save_last = c.save_last and keep
    callbacks.append(FitFeatureNorm())
    return instantiate(cfg.trainer, logger=logger, callbacks=callbacks, default_root_dir=str(folder), **options)


def serve_upstream(dm: SERDataModule, module: SERModule, trainer: L.Trainer) -> None:
    """A frozen upstream runs once per utterance, on the device training will use (waves are served otherwise)."""
    upstream = Upstream.of(module.frontend, trainer.strategy.root_device, dm.corpus.upstream_cache)
    dm.use_upstream(upstream, module.augment is not None and module.augment.on_waves)


def fit_fold(cfg: DictConfig, dm: SERDataModule, fold: Fold, run_dir: Path,
             subset: float = 1.0) -> tuple[dict[str, float], list]:
    """Train on one fold, test its tested checkpoint; returns its test metrics and confusion counts.

    With ``resume=true`` and ``<run_dir>/checkpoints/last.ckpt`` present, training continues from it
    (optimizer, scheduler, epoch and step included) up to the same ``trainer.max_epochs``. ``subset``:
    train on that share of every class's training utterances (``SERDataModule.use_fold``).
    """
    temperature = None
    if (cfg.get("calibrate") or {}).get("temperature") and not fold.val:
        temperature = temperature_from_inner_folds(cfg, dm, fold, run_dir)
        L.seed_everything(cfg.seed, workers=True)  # the fold's own model trains exactly as it would uncalibrated
    dm.use_fold(fold, subset)
    if dm.changed_labels and is_rank_zero():
        rundir.write_rows(run_dir / rundir.CHANGED_LABELS, ["path", "speaker", "label", "given"], dm.changed_labels)
    module = build_module(cfg, dm.corpus.class_names, dm.train_class_counts())
    compile_encoder(cfg, module)
    logger = instantiate(cfg.logger, save_dir=str(run_dir))
    trainer = make_trainer(cfg, run_dir, logger, select=bool(fold.val))
    if not fold.val and not any(isinstance(c, AverageLastEpochs) for c in trainer.callbacks):
        log.warning("split.val=0 without callbacks=average: testing the weights of the last epoch")
    serve_upstream(dm, module, trainer)
    held_out = f"test corpus {fold.test_corpora}" if fold.test_corpora else f"test speakers {fold.test_speakers}"
    log.info("fold %s: %d train / %d val / %d test utterances, %s",
             fold.name, len(fold.train), len(fold.val), len(fold.test), held_out)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=EVAL_MODE_UPSTREAM)
        # Checkpoints hold only tensors and plain values: read them with weights_only=True (no code runs on load).
        trainer.fit(module, datamodule=dm, ckpt_path=resume_checkpoint(cfg, run_dir, dm, fold), weights_only=True)
    return score_fold(cfg, dm, fold, module, trainer, run_dir, temperature)


def compile_encoder(cfg: DictConfig, module: SERModule) -> None:
    """``compile=true``: the encoder compiled in place, so checkpoint keys stay those of the plain module. Graphs
    inductor cannot compile run eager with a warning instead of stopping the run (torch 2.11's CPU inductor fails
    on these variable-length batches: pytorch/pytorch#185510)."""
    if cfg.get("compile"):
        torch._dynamo.config.suppress_errors = True
        module.encoder.compile()


def resume_checkpoint(cfg: DictConfig, run_dir: Path, dm: SERDataModule, fold: Fold) -> str | None:
    """``resume=true``: the fold's ``last.ckpt`` when there is one (checked against this config), else None."""
    last = run_dir / rundir.CHECKPOINTS / rundir.LAST
    if not (cfg.get("resume") and last.is_file()):
        return None
    check_compatible(last, cfg, dm.corpus.class_names)
    log.info("resuming fold %s from %s", fold.name, last)
    return str(last)


def score_fold(cfg: DictConfig, dm: SERDataModule, fold: Fold, module: SERModule, trainer: L.Trainer, run_dir: Path,
              temperature: float | None) -> tuple[dict[str, float], list]:
    """Test the fold's tested weights (``rundir.tested_checkpoint``: the averaged ones, else those selected on the
    validation speakers, else the weights training ended with), with the temperature fitted on ``fold``'s validation
    speakers, or given from inner folds, stored in that checkpoint; returns the test metrics and confusion counts."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    # last=False: without selection or averaging, the weights in memory are the last epoch's (last.ckpt's too)
    tested = rundir.tested_checkpoint(run_dir, selected=best, last=False)
    if (cfg.get("calibrate") or {}).get("temperature") and fold.val:
        if tested:
            module.load_state_dict(torch.load(tested, map_location=module.device, weights_only=True)["state_dict"])
        temperature = fit_temperature(*held_out_logits(module, dm, fold.val))
        log.info("fold %s: temperature %.3f fitted on the validation speakers (calibrate.temperature)", fold.name,
                 temperature)
    if temperature is not None:
        module.temperature.fill_(temperature)
        if tested:
            write_temperature(tested, temperature)  # predict, export and diagnose read it from there
    trainer.test(module, datamodule=dm, ckpt_path=str(tested) if tested else None, verbose=False, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    best_val = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    if best_val is not None:
        metrics["val/ua"] = float(best_val)  # the best validation UA: what sweeps select on
    if temperature is not None:
        metrics["calibration/temperature"] = temperature
    metrics = dict(sorted(metrics.items()))
    if trainer.is_global_zero:
        hp = {f"hp/test_{k}": metrics[f"test/{k}"] for k in ("ua", "wa", "macro_f1")}
        if best_val is not None:
            hp["hp/val_ua"] = float(best_val)
        trainer.logger.log_hyperparams(module.hparams, metrics=hp)
        trainer.logger.finalize("success")
    return metrics, module.last_confusion["test"].tolist()


def held_out_logits(module: SERModule, dm: SERDataModule, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, C) and labels (N,) of these utterances, whole, in eval mode (as the fold serves them)."""
    got = predict(module, dm.loader(indices, train=False))
    return got.logits, got.labels


def temperature_from_inner_folds(cfg: DictConfig, dm: SERDataModule, fold: Fold, run_dir: Path) -> float | None:
    """A fold without validation speakers: train the recipe on ``calibrate.inner_folds`` inner folds of its training
    speakers and fit the temperature on their pooled held-out logits (``ser.calibrate``). None, with a log line, when
    that is fewer than 2 or the fold has fewer than two training speakers."""
    k = int((cfg.get("calibrate") or {}).get("inner_folds") or 0)
    folds = inner_folds(fold, [u.speaker for u in dm.corpus.utterances], k)
    if not folds:
        log.info("fold %s: no validation speakers, so probabilities stay uncalibrated (calibrate.inner_folds=2 fits a "
                 "temperature on inner folds of the training speakers)", fold.name)
        return None
    logits, labels = [], []
    for inner in folds:
        L.seed_everything(cfg.seed, workers=True)
        dm.use_fold(inner)
        module = build_module(cfg, dm.corpus.class_names, dm.train_class_counts())
        folder = run_dir / "calibration" / inner.name
        # as the fold's own training: nothing is selected on the held-out speakers, nothing is kept
        trainer = make_trainer(cfg, folder, keep=False, limit_val_batches=0, enable_progress_bar=False,
                               enable_model_summary=False)
        serve_upstream(dm, module, trainer)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=EVAL_MODE_UPSTREAM)
            trainer.fit(module, datamodule=dm)  # callbacks=average loads the averaged weights at the end
        got = held_out_logits(module, dm, inner.val)
        logits.append(got[0])
        labels.append(got[1])
        shutil.rmtree(folder, ignore_errors=True)
    temperature = fit_temperature(torch.cat(logits), torch.cat(labels))
    log.info("fold %s: temperature %.3f fitted on %d inner folds of the training speakers (calibrate.inner_folds)",
             fold.name, temperature, len(folds))
    return temperature


def cross_validate(cfg: DictConfig, dm: SERDataModule, folds: list[Fold], run_dir: Path) -> dict[str, float]:
    """Every fold in its own ``fold_<name>/``, then the summaries; returns the mean metrics."""
    results, start, trained = [], time.monotonic(), 0
    for i, fold in enumerate(folds):
        fold_dir = run_dir / f"fold_{fold.name}"
        done = rundir.read_json(fold_dir / rundir.FOLD_RESULT) if cfg.get("resume") else None
        if done is not None:
            results.append(done)
            log.info("fold %d/%d (%s): finished before, skipped (resume=true)", i + 1, len(folds), fold.name)
            continue
        held_out = f"test corpus {fold.test_corpora[0]}" if fold.test_corpora else f"test speakers {fold.test_speakers}"
        log.info("fold %d/%d (%s, %s)%s", i + 1, len(folds), fold.name, held_out,
                 _eta(start, trained, len(folds) - len(results)))
        L.seed_everything(cfg.seed, workers=True)
        metrics, confusion = fit_fold(cfg, dm, fold, fold_dir)
        trained += 1
        result = {"fold": fold.name, "test_speakers": fold.test_speakers, "metrics": metrics, "confusion": confusion}
        if fold.test_corpora:
            result["test_corpora"] = fold.test_corpora
        write_json(fold_dir / rundir.METRICS, metrics)
        write_json(fold_dir / rundir.FOLD_RESULT, result)  # written last: its presence marks the fold finished
        results.append(result)
        log.info("fold %s: test UA %.3f WA %.3f", fold.name, metrics["test/ua"], metrics["test/wa"])
    summary = summarize(results, dm.corpus.class_names)
    summary["wall_time_s"] = round(time.monotonic() - start, 1)
    if is_rank_zero():
        write_summary(run_dir, summary, summary_title(cfg, dm, folds))
    mean, std = summary["mean"], summary["std"]
    log.info("%d folds: UA %.3f ± %.3f  WA %.3f ± %.3f  (%s)", len(folds), mean["test/ua"], std["test/ua"],
             mean["test/wa"], std["test/wa"], run_dir / rundir.CV_MARKDOWN)
    return mean


def summary_title(cfg: DictConfig, dm: SERDataModule, folds: list[Fold]) -> str:
    """``loso on emodb``; transductive normalisation said so."""
    split = "leave-one-corpus-out" if any(f.test_corpora for f in folds) else cfg.split._target_.rsplit(".", 1)[-1]
    normalize = cfg.features.get("normalize")
    note = f", features.normalize={normalize} (transductive)" if normalize in ("speaker", "corpus") else ""
    return f"{split} on {dm.corpus.label}{note}"


def _eta(start: float, done: int, remaining: int) -> str:
    """The time left for ``remaining`` folds at the pace of the ``done`` folds trained since ``start``."""
    if not done:
        return ""
    left = (time.monotonic() - start) / done * remaining
    return f", about {left / 60:.1f} min left"


def reuse_freed_memory() -> None:
    """Keep freed tensor memory in the process for the next batch (Linux, glibc).

    glibc hands blocks above its mmap threshold (at most 32 MiB by default) back to the kernel on
    free and faults fresh zeroed pages in on the next allocation. A training step allocates the same
    tens-of-MB tensors again and again, so that churn cost as much system time as the step itself
    (an EmoDB fold over cached GE2E frames: 31 s, 28 of them in the kernel, against 17 s with this).
    """
    # oneDNN keeps a compiled primitive per input shape (1024 by default); length-bucketed batches have many
    # shapes, so on a 10-hour corpus that cache alone took a one-epoch log-mel CNN run from 1.4 to 4.2 GB.
    # 64 (LRU) keeps it at 1.8 GB and EmoDB's speed within 2 % (experiments/scale/README.md).
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc (musl): nothing to tune
            return
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: allocate below 1 GiB from the heap
        libc.mallopt(-1, 1 << 31)  # M_TRIM_THRESHOLD: keep up to 2 GiB of free heap instead of trimming it


def check_components(cfg: DictConfig, run_dir: Path) -> None:
    """Build every component once before any data is loaded, so a bad value fails in seconds and
    names its group (``+optimizer.lrr=1e-3`` used to load the corpus, then die inside AdamW)."""
    built = {}
    probe = torch.nn.Parameter(torch.zeros(1))
    steps = {
        "features": lambda: built.setdefault("frontend", build_frontend(cfg)[0]),
        "model": lambda: instantiate(cfg.model, in_features=built["frontend"].out_features),
        "loss": lambda: instantiate(cfg.loss, class_counts=[1, 1]),
        "optimizer": lambda: instantiate(cfg.optimizer)([probe]),
        "scheduler": lambda: cfg.get("scheduler") and instantiate(cfg.scheduler)(torch.optim.SGD([probe], lr=0.1),
                                                                                  total_steps=10),
        "augment": lambda: cfg.get("augment") and instantiate(cfg.augment),
        "split": lambda: instantiate(cfg.split),
        "trainer": lambda: _quiet_trainer(cfg, run_dir),
    }
    for group, build in steps.items():
        try:
            build()
        except Exception as err:  # noqa: BLE001 - any failure here is the config's; say which group
            if isinstance(err, ImportError):
                raise
            target = cfg[group].get("_target_", "") if isinstance(cfg.get(group), DictConfig) else ""
            raise UserError(f"{group}{f' ({target})' if target else ''} cannot be built from its options: {short(err)}. "
                            f"See them with: python train.py --cfg job --package {group}") from err


def _quiet_trainer(cfg: DictConfig, run_dir: Path) -> None:
    """The trainer built once without its "GPU available: ..." lines (the real trainer prints them)."""
    quiet = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level, quiet.level = quiet.level, logging.WARNING
    try:
        instantiate(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False, default_root_dir=str(run_dir))
    finally:
        quiet.setLevel(level)


def write_status(run_dir: Path, status: str, **extra) -> None:
    """``rundir.write_status`` from rank 0: running, finished or failed (with the error)."""
    if is_rank_zero():
        rundir.write_status(run_dir, status, **extra)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test as the config says; writes ``metrics.json`` to ``cfg.paths.output_dir``.

    Returns the test metrics of the tested checkpoint (``test/ua``, ``test/wa``, ``test/macro_f1``,
    ``test/recall/<class>``). With several folds (``split=loso|kfold``) each fold trains in
    ``fold_<name>/`` and the returned metrics are the means over folds, also summarised in
    ``cv_summary.json`` and ``cv_summary.md``.
    """
    run_dir = Path(cfg.paths.output_dir)
    check_output_dir(run_dir)
    silence_known_noise()
    write_status(run_dir, "running")
    try:
        check_components(cfg, run_dir)
        metrics = _train(cfg, run_dir)
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        write_status(run_dir, status, error=f"{type(err).__name__}: {short(err)}"[:2000])
        raise
    write_status(run_dir, "finished", **{k: metrics[k] for k in ("test/ua", "test/wa", "test/macro_f1") if k in metrics})
    return metrics


def cpu_batchnorm(cfg: DictConfig) -> None:
    """``trainer=ddp`` syncs batch-norm statistics across ranks, which torch supports on GPUs only: on CPU
    ranks each keeps its own (as plain DDP does), said once, instead of stopping a CNN run."""
    t = cfg.trainer
    on_gpu = t.get("accelerator") in ("gpu", "cuda") or (t.get("accelerator") == "auto" and torch.cuda.is_available())
    if t.get("sync_batchnorm") and not on_gpu:
        log.info("trainer.sync_batchnorm: off on CPU ranks (SyncBatchNorm needs GPUs); each rank keeps its own "
                 "batch-norm statistics")
        with open_dict(cfg):
            t.sync_batchnorm = False


def _train(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    reuse_freed_memory()
    cpu_batchnorm(cfg)
    L.seed_everything(cfg.seed, workers=True)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.load()
    if dm.corpus.skipped:
        write_json(run_dir / rundir.SKIPPED, dm.corpus.skipped)
    folds = instantiate(cfg.split).folds(dm.corpus.utterances)
    if len(folds) == 1 and cfg.split.get("fold") is None:
        metrics, _ = fit_fold(cfg, dm, folds[0], run_dir)
    else:
        metrics = cross_validate(cfg, dm, folds, run_dir)
    write_json(run_dir / rundir.METRICS, metrics)
    log.info("test UA %.3f  WA %.3f  macro-F1 %.3f  -> %s", metrics["test/ua"], metrics["test/wa"],
             metrics["test/macro_f1"], run_dir / rundir.METRICS)
    if is_rank_zero():
        log.info("why does it misclassify? next: python -m ser.diagnose run=%s", run_dir)
    return metrics
