"""What a check may use beyond the test predictions: the run's data and folds, utterance feature sets
with linear probes on the same folds, and retraining the run's recipe on part of its training data."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import lightning as L
import numpy as np
from omegaconf import DictConfig, open_dict

from ser import rundir
from ser.checkpoint import load_model
from ser.data.splits import Fold
from ser.data.upstream_cache import FeatureStore
from ser.diagnose.evaluate import predict
from ser.diagnose.html import HtmlOptions
from ser.feature_sets import extractor, fold_matrix
from ser.probe import Probe
from ser.train import fit_fold

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Options:
    """``conf/diagnose.yaml``'s options: what ``ser.diagnose.core.diagnose`` and the checks read.

    Args:
        overrides: ``key=value`` patches to the config stored in the run's checkpoints (``data.root=`` when the
            corpus has moved, ``inject.test_channel=telephone`` to stress-test the model).
        device: where the checkpoints run.
        out: the diagnosis folder (None: ``<run>/diagnosis``).
        snrs: the noise levels (dB SNR) of the noise-sensitivity curve.
        occlude: occlude groups of feature rows (the features check).
        probes: linear probes on utterance features (label quality, features against architecture).
        retrain: ``auto`` | ``true`` | ``false``: the checks that retrain the recipe (the learning curve; without
            the suspect labels) do so when that should take under ``budget_s`` seconds, always, or never.
        budget_s: see ``retrain``.
        budget_runs: with ``retrain=auto``, the budget as retraining work instead of seconds: a check may retrain
            ``share`` times the run's own training when ``share`` is at most this (the learning curve 0.75, without
            the suspects twice the share kept). The same decision on any machine, however loaded: the bench's
            (seconds from the run's own training time tip over when another job beside it slows it). None: budget_s.
        verify: follow the advice of the top ``verify_top`` causes and report whether it helped (``ser.diagnose.verify``).
        verify_top: see ``verify``.
        bootstrap: resamples of every bootstrap interval.
        seed: noise, bootstrap and permutation draws (the run's own seed, set by ``diagnose``).
        html: ``report.html``'s options (``ser.diagnose.html.HtmlOptions``, or a mapping of them).
    """

    overrides: tuple[str, ...] = ()
    device: str = "cpu"
    out: str | None = None
    snrs: tuple[float, ...] = (40, 20, 10, 5, 0)
    occlude: bool = True
    probes: bool = True
    retrain: str = "auto"
    budget_s: float = 300.0
    budget_runs: float | None = None
    verify: bool = False
    verify_top: int = 2
    bootstrap: int = 200
    seed: int = 0
    html: HtmlOptions = field(default_factory=HtmlOptions)

    def __post_init__(self):
        if isinstance(self.html, Mapping):
            object.__setattr__(self, "html", HtmlOptions(**self.html))
        object.__setattr__(self, "overrides", tuple(self.overrides))
        object.__setattr__(self, "snrs", tuple(float(x) for x in self.snrs))
        object.__setattr__(self, "retrain", str(self.retrain))


class RunContext:
    """The run being diagnosed.

    Args:
        cfg: the run's resolved config (with the diagnosis's patches).
        dm: its data module, loaded.
        folds: the diagnosed folds by name, as the split made them.
        out: the diagnosis folder (retrained models go below it).
        options: ``Options``.
        wall_s: fold name -> seconds its training took (from its TensorBoard events), for budgets.
    """

    def __init__(self, cfg: DictConfig, dm, folds: dict[str, Fold], out: Path, options: Options,
                 wall_s: dict[str, float] | None = None):
        self.cfg, self.dm, self.folds, self.out, self.options = cfg, dm, folds, Path(out), options
        self.wall_s = dict(wall_s or {})
        self._matrices: dict[str, tuple[np.ndarray, object] | None] = {}

    def use(self, name: str) -> Fold:
        """Serve fold ``name`` (injected faults applied); returns the fold as served."""
        self.dm.use_fold(self.folds[name])
        return self.dm.fold

    # -- utterance feature sets ----------------------------------------------------------------
    def feature_sets(self) -> dict[str, str]:
        """The sets a probe can use here: ``own`` (the run's frontend), ``logmel`` (64-band log-mel
        functionals), ``egemaps`` (openSMILE, with the baselines extra), ``ge2e`` (with the pretrained extra)."""
        sets = {"own": "the run's own frontend", "logmel": "log-mel functionals (64 bands)"}
        if _importable("opensmile"):
            sets["egemaps"] = "openSMILE eGeMAPSv02 (88 functionals)"
        if _importable("resemblyzer") and self.dm.corpus.sample_rate == 16000:
            sets["ge2e"] = "GE2E hidden-state statistics (speaker-verification upstream)"
        return sets

    def matrix(self, name: str) -> tuple[np.ndarray, object] | None:
        """(N, D) utterance features of every utterance (clean audio) and the function that computes
        them for other audio; None when the set is not available here. Cached on disk like ``ser.baselines``."""
        if name not in self._matrices:
            self._matrices[name] = self._build(name) if name in self.feature_sets() else None
        return self._matrices[name]

    def _build(self, name: str):
        store = FeatureStore(Path(self.cfg.paths.cache_dir) / "baselines")
        rate = [f"data.sample_rate={self.dm.corpus.sample_rate}"]
        if name == "own":
            extract = extractor([], [], self.dm.corpus, store, self.cfg)
        else:
            extract = extractor([name], rate, self.dm.corpus, store)
        with _quiet():
            X = np.concatenate(extract(), axis=1)
        return X, extract

    def fold_matrix(self, name: str, per_speaker: bool = False) -> np.ndarray | None:
        """The set as the current fold sees it (rows of injected test audio recomputed)."""
        built = self.matrix(name)
        if built is None:
            return None
        X, extract = built
        with _quiet():
            return fold_matrix(X, self.dm, extract, [u.speaker for u in self.dm.corpus.utterances] if per_speaker else None)

    # -- probes -----------------------------------------------------------------------------------
    def probe(self, name: str, order: dict[str, list[int]], drop: set[int] = frozenset()) -> np.ndarray | None:
        """Out-of-speaker class probabilities of a linear probe on feature set ``name``: per fold, trained
        on its training and validation utterances (labels as training saw them, ``drop`` left out),
        applied to its test utterances in ``order[fold]``; the folds' rows stacked. None without the set."""
        if self.matrix(name) is None:
            return None
        out = []
        for fold_name, index in order.items():
            fold = self.use(fold_name)
            X, y = self.fold_matrix(name), np.array(self.dm.targets)
            train = np.array([i for i in sorted(fold.train + fold.val) if i not in drop])
            out.append(Probe(X[train], y[train], len(self.dm.corpus.class_names)).predict_proba(X[index]))
        return np.concatenate(out)

    # -- retraining ---------------------------------------------------------------------------------
    def retraining_cost(self, share: float) -> float:
        """Estimated seconds to retrain every diagnosed fold on ``share`` of its training data in all (training
        time grows with the data); NaN when the run's training time is unknown."""
        if not self.wall_s or any(np.isnan(v) for v in self.wall_s.values()):
            return float("nan")
        return float(sum(self.wall_s.get(n, np.nan) for n in self.folds) * share)

    def refuse_retraining(self, share: float) -> str:
        """Why a check may not retrain the recipe on ``share`` of the training data per fold ('' when it may)."""
        mode = str(self.options.retrain).lower()
        if mode in ("false", "off", "no"):
            return "retrain=false"
        if mode != "auto":
            return ""
        if self.options.budget_runs is not None:  # work, not seconds: the same on every machine
            if share <= self.options.budget_runs + 1e-9:
                return ""
            return (f"it would retrain {share:.2f} times the run's own training (budget_runs="
                    f"{self.options.budget_runs:.3g}); retrain=true runs it anyway")
        cost = self.retraining_cost(share)
        if not cost <= self.options.budget_s:
            when = "the run's training time is unknown" if np.isnan(cost) else f"it would take about {cost / 60:.0f} min"
            return f"{when} (budget_s={self.options.budget_s:g}); retrain=true runs it anyway"
        return ""

    def retrain(self, name: str, subset: float, tag: str, index: list[int], drop: set[int] = frozenset(),
                val: dict | None = None) -> np.ndarray:
        """The run's recipe retrained on fold ``name`` with ``subset`` of every class's training utterances
        (seeded) and without the utterances in ``drop``, in ``<out>/retrain/<tag>/fold_<name>``; its tested
        weights' probabilities on the fold's test utterances, rows in ``index`` order. With ``val`` (a dict), its
        predicted classes and the labels of the fold's validation utterances go there too (``preds``, ``labels``)."""
        cfg = self.cfg.copy()
        with open_dict(cfg):
            cfg.resume = False
            cfg.trainer.enable_progress_bar = False
            cfg.calibrate = {"temperature": False}  # a retrain is scored by UA: no temperature to fit
        folder = self.out / "retrain" / tag / f"fold_{name}"
        fold = self.folds[name]
        fold = replace(fold, train=[i for i in fold.train if i not in drop], val=[i for i in fold.val if i not in drop])
        if "average" in cfg.get("callbacks", {}):  # the averaged weights are tested: nothing is selected on validation
            fold = replace(fold, val=[])
        with _quiet():
            L.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
            fit_fold(cfg, self.dm, fold, folder, subset=subset)
        model = load_model(rundir.tested_checkpoint(folder), self.options.device)
        fold = self.use(name)
        probs, _, got = predict(model, self.dm, fold.test)
        if val is not None and fold.val:
            val_probs, val["labels"], _ = predict(model, self.dm, fold.val)
            val["preds"] = val_probs.argmax(1)
        row = {i: k for k, i in enumerate(got)}
        return probs[[row[i] for i in index]]


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@contextlib.contextmanager
def _quiet():
    """Lightning's and the library's INFO lines off while a check retrains or extracts (one line per step instead)."""
    loggers = [logging.getLogger(), logging.getLogger("lightning"), logging.getLogger("lightning.pytorch")]
    levels = [x.level for x in loggers]
    for x in loggers:
        x.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for x, level in zip(loggers, levels):
            x.setLevel(level)
