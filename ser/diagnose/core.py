"""Find a run's checkpoints, rebuild its data, evaluate each fold, run every check, write the report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ser.callbacks import AVERAGED
from ser.checkpoint import load_model
from ser.diagnose.checks import default_checks
from ser.diagnose.context import Options, RunContext
from ser.diagnose.evaluate import evaluate_fold
from ser.diagnose.evidence import Evidence, RunSettings
from ser.diagnose.fitting import read_curves, training_seconds
from ser.diagnose.report import write
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


def diagnose(run: str | Path, overrides: list[str] = (), device: str = "cpu", snrs=(40, 20, 10, 5, 0),
             out: str | Path | None = None, occlude: bool = True, probes: bool = True, retrain: str = "auto",
             budget_s: float = 300.0, checks=None, verify: bool = False, verify_top: int = 2) -> Path:
    """Evaluate the tested checkpoint of every fold of ``run`` on its test split, run every check
    (``ser.diagnose.checks``) and write ``<run>/diagnosis/`` (or ``out``). Returns the path of ``report.md``.

    ``overrides`` (``key=value``) patch the config stored in the checkpoints: ``data.root=`` when the
    corpus has moved, ``data.inject.test_channel=telephone`` to stress-test the model. ``probes``: the
    linear probes (label quality, features); ``retrain``: the checks that retrain the run's recipe (the
    learning curve on 25 and 50 % of the training data; without the suspect labels) do so when that should
    take under ``budget_s`` seconds (``auto``), always (``true``) or never (``false``). ``verify``: retrain the run
    with the advice of its top ``verify_top`` causes and report whether it helped (``ser.diagnose.verify``).
    """
    silence_known_noise()
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run={run_dir}: no such directory")
    out = Path(out) if out else run_dir / "diagnosis"
    checks = default_checks() if checks is None else checks
    options = Options(device=device, snrs=tuple(float(s) for s in snrs), occlude=occlude, probes=probes,
                      retrain=str(retrain), budget_s=float(budget_s))
    dm = folds = cfg = None
    results, curves, wall = [], {}, {}
    for name, fold_dir in fold_dirs(run_dir).items():
        ckpt = best_checkpoint(fold_dir)
        model = load_model(ckpt, device)
        cfg = OmegaConf.merge(OmegaConf.create(model.hparams.config), OmegaConf.from_dotlist(list(overrides)))
        if dm is None:
            dm = instantiate(cfg.data)
            dm.prepare_data()
            dm.load()
            folds = {f.name: f for f in instantiate(cfg.split).folds(dm.utterances)}
            options = Options(**{**options.__dict__, "seed": int(cfg.get("seed", 0))})
        if dm.class_names != model.class_names:
            raise ValueError(f"{ckpt}: trained on classes {model.class_names}, but the data now gives {dm.class_names}; "
                             "pass the run's data settings as overrides")
        if name and name not in folds:
            raise ValueError(f"{fold_dir}: fold {name!r} is not among the split's folds {sorted(folds)}")
        fold = folds[name] if name else next(iter(folds.values()))
        log.info("diagnosing %s (%s)", fold.name, ckpt)
        results.append(evaluate_fold(model, dm, fold, checks, options))
        curves[fold.name], wall[fold.name] = read_curves(fold_dir), training_seconds(fold_dir)
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    ev = Evidence(dm.class_names, results, RunSettings.of(cfg), curves)
    context = RunContext(cfg, dm, {r.fold: folds[r.fold] for r in results}, out, options, wall)
    for check in checks:
        ev.measured[check.name] = check.measure(ev, context) or {}
    title = f"{run_dir} ({dm.corpus_label}, {len(results)} fold{'s' if len(results) > 1 else ''})"
    report = write(ev, checks, out, title)
    if verify:
        add_verification(run_dir, out, ev.measured, verify_top)
    return report


def add_verification(run_dir: Path, out: Path, measured: dict, top: int) -> None:
    """``verify=true``: retrain with the top causes' advice; the results go into diagnosis.json (``verified``) and a
    report section after the ranked causes."""
    from ser.diagnose import verify as V

    summary = json.loads((out / "diagnosis.json").read_text())
    summary["verified"] = V.verify(run_dir, summary, measured, out, top)
    (out / "diagnosis.json").write_text(json.dumps(summary, indent=2) + "\n")
    section = V.markdown(summary["verified"]) or ["## Advice, verified", "", "No cause with advice to follow.", ""]
    report = (out / "report.md").read_text()
    at = report.index("How to read this:")
    (out / "report.md").write_text(report[:at] + "\n".join(section) + "\n" + report[at:])
