"""Find a run's checkpoints, rebuild its data, evaluate each fold and write the report."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ser.callbacks import AVERAGED
from ser.checkpoint import load_model
from ser.diagnose.evaluate import evaluate_fold
from ser.diagnose.fitting import read_curves
from ser.diagnose.report import collect, write
from ser.quiet import silence_known_noise

log = logging.getLogger(__name__)


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint the run tested: ``checkpoints/averaged.ckpt`` (``callbacks.average``), else
    ``best-*.ckpt``, else ``last.ckpt``."""
    ckpts = run_dir / "checkpoints"
    if (ckpts / AVERAGED).is_file():
        return ckpts / AVERAGED
    best = sorted(ckpts.glob("best-*.ckpt"))
    if best:
        return best[-1]
    if (ckpts / "last.ckpt").is_file():
        return ckpts / "last.ckpt"
    raise FileNotFoundError(f"run={run_dir}: no checkpoints/best-*.ckpt or last.ckpt; is this a ser run directory?")


def fold_dirs(run_dir: Path) -> dict[str, Path]:
    """Fold name -> directory for a cross-validation run; {"": run_dir} for a single run."""
    folds = {p.name.removeprefix("fold_"): p for p in sorted(run_dir.glob("fold_*")) if (p / "checkpoints").is_dir()}
    if folds:
        return folds
    if (run_dir / "checkpoints").is_dir():
        return {"": run_dir}
    raise FileNotFoundError(f"run={run_dir}: no checkpoints/ and no fold_*/checkpoints/; pass a run directory of train.py")


def settings_of(cfg) -> dict:
    """The knobs the report's advice depends on, read from the run's config."""
    augment = cfg.get("augment") or {}
    return {
        "class_weighted": bool(cfg.loss.get("class_weighted", False)) or cfg.data.get("sampler") == "balanced",
        "prosody": bool(cfg.features.get("prosody", False)),
        "noise_augmented": float(augment.get("noise_p", 0.0) or 0.0) > 0,
        "label_smoothing": float(cfg.loss.get("label_smoothing", 0.0) or 0.0) > 0,
        "pretrained": str(cfg.features.get("_target_", "")).startswith(("ser.features.ge2e", "ser.features.ssl")),
        "corpus_normalized": cfg.features.get("normalize") == "corpus",
    }


def diagnose(run: str | Path, overrides: list[str] = (), device: str = "cpu", snrs=(40, 20, 10, 5, 0),
             out: str | Path | None = None, occlude: bool = True) -> Path:
    """Evaluate the best checkpoint of every fold of ``run`` on its test split; write ``<run>/diagnosis/``.

    ``overrides`` (``key=value``) patch the config stored in the checkpoints, e.g. ``data.root=`` when
    the corpus has moved. Returns the path of ``report.md``.
    """
    silence_known_noise()
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run={run_dir}: no such directory")
    dirs = fold_dirs(run_dir)
    dm = folds = None
    results, curves = [], {}
    for name, fold_dir in dirs.items():
        ckpt = best_checkpoint(fold_dir)
        model = load_model(ckpt, device)
        cfg = OmegaConf.merge(OmegaConf.create(model.hparams.config), OmegaConf.from_dotlist(list(overrides)))
        if dm is None:
            dm = instantiate(cfg.data)
            dm.prepare_data()
            dm.load()
            folds = {f.name: f for f in instantiate(cfg.split).folds(dm.utterances)}
        if dm.class_names != model.class_names:
            raise ValueError(f"{ckpt}: trained on classes {model.class_names}, but the data now gives {dm.class_names}; "
                             "pass the run's data settings as overrides")
        fold = folds[name] if name else next(iter(folds.values()))
        if name and name not in folds:
            raise ValueError(f"{fold_dir}: fold {name!r} is not among the split's folds {sorted(folds)}")
        log.info("diagnosing %s (%s)", fold.name, ckpt)
        results.append(evaluate_fold(model, dm, fold, snrs=snrs, seed=int(cfg.get("seed", 0)), occlude=occlude))
        curves[fold.name] = read_curves(fold_dir)
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    ev = collect(results, curves, dm.class_names, settings=settings_of(cfg))
    title = f"{run_dir} ({dm.corpus_label}, {len(results)} fold{'s' if len(results) > 1 else ''})"
    return write(ev, curves, Path(out) if out else run_dir / "diagnosis", title)
