"""Find a run's tested checkpoints, rebuild its data, evaluate each fold, run every check, write the report."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ser import rundir
from ser.build import build_datamodule, upgrade
from ser.checkpoint import load_model
from ser.diagnose import html, verify
from ser.diagnose.check import Check, measuring_order
from ser.diagnose.checks import default_checks
from ser.diagnose.context import Options, RunContext
from ser.diagnose.evaluate import evaluate_fold
from ser.diagnose.evidence import Evidence, RunSettings
from ser.diagnose.fitting import read_curves, training_seconds
from ser.diagnose.report import write
from ser.quiet import silence_known_noise

log = logging.getLogger(__name__)


def diagnose(run: str | Path, options: Options | None = None, checks: list[Check] | None = None) -> Path:
    """Evaluate the tested checkpoint of every fold of ``run`` on its test split, run every check
    (``default_checks()``, or ``checks``) and write ``<run>/diagnosis/`` (or ``options.out``): ``report.md``,
    ``diagnosis.json``, figures and the checks' files. Returns the path of ``report.md``. ``options``: ``Options``
    (the diagnosis's settings, ``conf/diagnose.yaml``); with ``verify``, the top causes' advice is followed and
    scored (``ser.diagnose.verify``).
    """
    silence_known_noise()
    options = options or Options()
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run={run_dir}: no such directory")
    out = Path(options.out) if options.out else run_dir / "diagnosis"
    checks = default_checks() if checks is None else list(checks)
    ev, context = evaluate_run(run_dir, options, checks, out)
    for check in measuring_order(checks):
        ev.measured[check.name] = check.measure(ev, context) or {}
    title = f"{run_dir} ({context.dm.corpus.label}, {len(ev.folds)} fold{'s' if len(ev.folds) > 1 else ''})"
    report = write(ev, checks, out, title)
    if options.verify:
        verify.add_to_report(run_dir, out, ev.measured, checks, options.verify_top)
    html.write(ev, context, out, options.html, run_dir)  # after verify: the page shows its section too
    if options.html.enabled:
        html.write_tensorboard(ev, context, out, options.html)
    return report


def evaluate_run(run_dir: Path, options: Options, checks: list[Check], out: Path) -> tuple[Evidence, RunContext]:
    """Every fold's tested checkpoint on its test split, with each check's ``per_fold`` measurement: the pooled
    ``Evidence``, and the ``RunContext`` (the run's data, folds and config) the checks measure with."""
    dm = folds = cfg = None
    results, curves, wall = [], {}, {}
    for name, fold_dir in rundir.fold_dirs(run_dir).items():
        ckpt = rundir.tested_checkpoint(fold_dir)
        if ckpt is None:
            raise FileNotFoundError(f"run={run_dir}: no checkpoint in {fold_dir / rundir.CHECKPOINTS}")
        model = load_model(ckpt, options.device)
        stored = upgrade(OmegaConf.create(model.hparams.config))  # a run from before the data module was split, too
        cfg = OmegaConf.merge(stored, OmegaConf.from_dotlist(list(options.overrides)))
        if dm is None:
            dm = build_datamodule(cfg)
            dm.prepare_data()
            dm.load()
            folds = {f.name: f for f in instantiate(cfg.split).folds(dm.corpus.utterances)}
            options = replace(options, seed=int(cfg.get("seed", 0)))
        fold = _fold_of(name, fold_dir, ckpt, folds, dm.corpus.class_names, model.class_names)
        log.info("diagnosing %s (%s)", fold.name, ckpt)
        results.append(evaluate_fold(model, dm, fold, checks, options))
        curves[fold.name], wall[fold.name] = read_curves(fold_dir), training_seconds(fold_dir)
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    ev = Evidence(dm.corpus.class_names, results, RunSettings.of(cfg), curves)
    return ev, RunContext(cfg, dm, {r.fold: folds[r.fold] for r in results}, out, options, wall)


def _fold_of(name: str, fold_dir: Path, ckpt: Path, folds: dict, class_names: list[str], trained_on: list[str]):
    """The split's fold a fold folder holds (its name; the one fold of a single split), checked against the data."""
    if class_names != trained_on:
        raise ValueError(f"{ckpt}: trained on classes {trained_on}, but the data now gives {class_names}; "
                         "pass the run's data settings as overrides")
    if name and name not in folds:
        raise ValueError(f"{fold_dir}: fold {name!r} is not among the split's folds {sorted(folds)}")
    return folds[name] if name else next(iter(folds.values()))
