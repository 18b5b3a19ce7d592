"""The run folder, in one place: what ``train.py`` writes there and every tool reads back.

    <run>/.hydra/config.yaml, overrides.yaml   Hydra's: the composed config and the command-line overrides
    <run>/status.json                          running | finished | failed | interrupted (with the error)
    <run>/metrics.json                         the test metrics (means over folds for cross-validation)
    <run>/cv_summary.json, cv_summary.md       cross-validation: per fold, mean and std, pooled
    <run>/skipped_files.json                   bad files left out (data.on_bad_file=skip)
    <run>/fold_<name>/                         one folder per fold (cross-validation), each holding
        metrics.json, fold_result.json          the fold's test metrics; fold_result.json marks it finished
        checkpoints/                           best-*.ckpt, last.ckpt, averaged.ckpt (callbacks=average)
        injected_labels.csv                    inject.label_noise: the labels replaced in this fold
        tensorboard/                           the training curves
    <run>/checkpoints/, tensorboard/           the same for a single split

Every file is written whole or not at all (``atomic``): a crash leaves the previous version, never half
a file. A leaf: nothing of ``ser`` is imported here.
"""

from __future__ import annotations

import csv
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

METRICS = "metrics.json"
CV_SUMMARY, CV_MARKDOWN = "cv_summary.json", "cv_summary.md"
FOLD_RESULT = "fold_result.json"  # written last in a fold's folder: its presence marks the fold finished
STATUS = "status.json"
SKIPPED = "skipped_files.json"
CHANGED_LABELS = "injected_labels.csv"  # inject.label_noise: the replaced labels of a fold, to score their detection
CHECKPOINTS = "checkpoints"
AVERAGED = "averaged.ckpt"  # callbacks=average: the averaged weights, tested instead of a selected checkpoint
LAST = "last.ckpt"


def atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then renamed over it: readers (other jobs, a crash
    and resume) see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data) -> None:
    """``data`` as indented JSON, atomically."""
    atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def write_text(path: Path, text: str) -> None:
    atomic(path, lambda tmp: tmp.write_text(text))


def read_json(path: Path, default=None):
    """The JSON in ``path``, or ``default`` when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default


def write_rows(path: Path, fields: list[str], rows: list[dict]) -> None:
    """A CSV file of ``rows`` (dicts with ``fields``), atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    atomic(path, write)


def write_status(run_dir: Path, status: str, **extra) -> None:
    """``status.json``: running, finished, failed or interrupted (with the error), so summaries skip or label the run."""
    write_json(Path(run_dir) / STATUS, {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S")} | extra)


def read_status(run_dir: Path) -> dict:
    """``status.json`` as written, or {} for a run from before status files."""
    return read_json(Path(run_dir) / STATUS, {})


def fold_dirs(run_dir: Path) -> dict[str, Path]:
    """Fold name -> folder for a cross-validation run; {"": run_dir} for a single split."""
    run_dir = Path(run_dir)
    folds = {p.name.removeprefix("fold_"): p for p in sorted(run_dir.glob("fold_*")) if (p / CHECKPOINTS).is_dir()}
    if folds:
        return folds
    if (run_dir / CHECKPOINTS).is_dir():
        return {"": run_dir}
    raise FileNotFoundError(f"run={run_dir}: no checkpoints/ and no fold_*/checkpoints/; pass a run directory of train.py")


def fold_metrics(run_dir: Path) -> dict[str, dict]:
    """Fold name -> the test metrics a run wrote (``fold_<name>/metrics.json``, or ``metrics.json`` for one split)."""
    run_dir = Path(run_dir)
    folds = {p.name.removeprefix("fold_"): read_json(p / METRICS)
             for p in sorted(run_dir.glob("fold_*")) if (p / METRICS).is_file()}
    return folds or {"": read_json(run_dir / METRICS)}


def tested_checkpoint(folder: Path, selected: str | None = None, last: bool = True) -> Path | None:
    """The checkpoint a run tests, in ``<folder>/checkpoints``: ``averaged.ckpt`` (``callbacks=average``), else the
    one selected on the validation speakers (``selected``: the trainer's, or the newest ``best-*.ckpt``), else,
    with ``last``, ``last.ckpt``; None when there is none (training then tests the weights it holds)."""
    ckpts = Path(folder) / CHECKPOINTS
    if (ckpts / AVERAGED).is_file():
        return ckpts / AVERAGED
    if selected:
        return Path(selected)
    best = sorted(ckpts.glob("best-*.ckpt"))
    if best:
        return best[-1]
    return ckpts / LAST if last and (ckpts / LAST).is_file() else None


def read_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides the run was trained with (Hydra keeps them in ``.hydra/overrides.yaml``)."""
    path = Path(run_dir) / ".hydra" / "overrides.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: train.py writes it; pass a run directory of train.py")
    return [str(o) for o in OmegaConf.to_container(OmegaConf.load(path)) or []]


def write_overrides(run_dir: Path, overrides: list[str]) -> None:
    """``.hydra/overrides.yaml`` as Hydra writes it, for runs trained without Hydra's launcher (the bench)."""
    folder = Path(run_dir) / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(list(overrides))))


def read_config(run_dir: Path) -> dict:
    """The run's composed config (``.hydra/config.yaml``, unresolved) with its config-group choices
    (``model: lstm``) from ``.hydra/hydra.yaml`` where Hydra wrote one, under ``choices``."""
    hydra = Path(run_dir) / ".hydra"
    config = OmegaConf.to_container(OmegaConf.load(hydra / "config.yaml"), resolve=False)
    choices = {}
    if (hydra / "hydra.yaml").is_file():
        found = OmegaConf.load(hydra / "hydra.yaml").hydra.runtime.choices
        choices = {g: str(c) for g, c in found.items() if not g.startswith("hydra")}
    return {"config": config, "choices": choices}
