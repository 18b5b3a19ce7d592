"""What the checks read: each fold's test predictions (``FoldResult``), the pooled view of all folds
(``Evidence``), and what a check concludes (``Finding``)."""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ser import stats as S


@dataclass
class FoldResult:
    """One fold's test split, one row per test utterance, in the order the model was run.

    ``extra`` holds what each check measured on this fold with the fold's model (by check name).
    """

    fold: str
    index: list[int]  # the test utterances, as indices into the data module's utterances
    probs: np.ndarray  # (N, C) class probabilities on the test audio as the run saw it
    labels: np.ndarray  # (N,)
    paths: list[str]
    speakers: list[str]
    genders: list[str]
    durations: np.ndarray  # (N,) seconds
    train_counts: list[int]  # training utterances per class in this fold (as training saw the labels)
    cross_corpus: bool = False  # tested on corpora the fold did not train on
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSettings:
    """The run's knobs that the advice depends on (a class-weighted run is not told to weight classes)."""

    class_weighted: bool = False
    balanced_sampler: bool = False
    prosody: bool = False
    noise_augmented: bool = False
    condition_copies: int = 0  # conditions.copies: degraded copies per training utterance (multi-condition training)
    label_smoothing: bool = False
    pretrained: bool = False
    corpus_normalized: bool = False
    spectral_frontend: bool = True  # log-mel or MFCC: features.f_max and features.n_mels apply
    level_invariant: bool = False  # the frontend or normalisation removes each utterance's level
    lr: float | None = None
    default_lr: float | None = None  # the optimizer's own default learning rate (its signature's)
    max_epochs: int | None = None
    batch_size: int | None = None
    model_options: dict = field(default_factory=dict)  # the encoder's plain options (hidden, depth, dropout, ...)

    @property
    def more_copies(self) -> str:
        """The override that adds multi-condition copies (or more of them)."""
        return f"conditions.copies={max(4, 2 * self.condition_copies)}"

    @property
    def variety(self) -> str:
        """The override that trains on more acoustic variety: degraded copies through a frozen upstream (cached,
        so training stays fast), on-device augmentation otherwise (``augment=full`` would run the upstream on
        augmented audio every step)."""
        return self.more_copies if self.pretrained else "augment=full"

    @classmethod
    def of(cls, cfg) -> RunSettings:
        augment = cfg.get("augment") or {}
        target = str(cfg.features.get("_target_", ""))
        return cls(
            class_weighted=bool(cfg.loss.get("class_weighted", False)),
            balanced_sampler=cfg.get("loader", {}).get("sampler") == "balanced",
            prosody=bool(cfg.features.get("prosody", False)),
            noise_augmented=float(augment.get("noise_p", 0.0) or 0.0) > 0,
            condition_copies=int((cfg.get("conditions") or {}).get("copies", 0) or 0),
            label_smoothing=float(cfg.loss.get("label_smoothing", 0.0) or 0.0) > 0,
            pretrained=target.startswith(("ser.features.ge2e", "ser.features.ssl")),
            corpus_normalized=cfg.features.get("normalize") == "corpus",
            spectral_frontend=target.startswith("ser.features.frontend"),
            # upstreams normalise their input level (GE2E to -30 dBFS, SSL models to unit variance)
            level_invariant=target.startswith("ser.features.") and not target.startswith("ser.features.frontend")
            or cfg.features.get("normalize") in ("utterance", "speaker"),
            lr=cfg.get("optimizer", {}).get("lr"),
            default_lr=_default_lr(cfg.get("optimizer", {}).get("_target_")),
            max_epochs=cfg.get("trainer", {}).get("max_epochs"),
            batch_size=cfg.get("loader", {}).get("batch_size"),
            model_options={k: v for k, v in cfg.model.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        )


def _default_lr(target: str | None) -> float | None:
    """The learning rate an optimizer class takes when given none (``torch.optim.AdamW``: 1e-3); None when the
    class cannot be found or has no numeric default."""
    if not target:
        return None
    module, _, name = str(target).rpartition(".")
    try:
        default = inspect.signature(getattr(importlib.import_module(module), name)).parameters["lr"].default
    except (ImportError, AttributeError, KeyError, ValueError, TypeError):
        return None
    return float(default) if isinstance(default, (int, float)) and not isinstance(default, bool) else None


@dataclass
class Finding:
    """A likely cause of errors, or a risk, with its numbers and what to try.

    ``score`` estimates the UA the cause costs on this test set (``kind="cause"``); a risk (noise
    sensitivity, calibration) costs no UA here and is listed apart. ``interval``: a 90 % bootstrap
    interval of the score over test utterances, where one was computed. ``advice``: exact overrides
    for ``train.py``, one coherent change applied together (verify=true follows them as a whole; alternatives go in
    ``note``); ``note``: what no override expresses. ``explained_by``:
    causes that, when also found, produce this one (a flexible model overfits too little data, the
    rare classes, noisy labels): it is then ranked after them, as their consequence. ``measured_through``: those of
    them that the measurement itself passed through (features compared on test audio that differs from training
    compare robustness, not content): found sure, they explain it whatever their size.
    """

    id: str
    cause: str
    score: float
    evidence: str
    advice: list[str] = field(default_factory=list)
    note: str = ""
    interval: tuple[float, float] | None = None
    kind: str = "cause"
    explained_by: tuple[str, ...] = ()
    measured_through: tuple[str, ...] = ()

    @property
    def sure(self) -> str:
        """``strong`` when the interval stays above zero (or there is none and the score is clear), else ``weak``."""
        if self.interval is not None:
            return "strong" if self.interval[0] > 0 else "weak"
        return "strong" if self.score >= 0.05 else "weak"

    def as_dict(self) -> dict:
        out = {"id": self.id, "cause": self.cause, "score": round(float(self.score), 4), "sure": self.sure,
               "evidence": self.evidence, "advice": list(self.advice), "try": self.try_text()}
        if self.interval is not None:
            out["interval"] = [round(float(x), 4) for x in self.interval]
        if self.explained_by:
            out["explained_by"] = list(self.explained_by)
        if self.measured_through:
            out["measured_through"] = list(self.measured_through)
        return out

    def try_text(self) -> str:
        parts = [f"`{a}`" for a in self.advice]
        return "; ".join(parts + ([self.note] if self.note else []))


class Evidence:
    """Every fold's test predictions pooled, with the run's settings and training curves.

    Args:
        class_names: the classes, in logit order.
        folds: one ``FoldResult`` per diagnosed fold.
        settings: the run's knobs (``RunSettings``).
        curves: fold name -> training curves (``ser.diagnose.fitting.read_curves``).
    """

    def __init__(self, class_names: list[str], folds: list[FoldResult], settings: RunSettings,
                 curves: dict[str, dict[str, list[float]]]):
        self.class_names, self.folds, self.settings, self.curves = list(class_names), folds, settings, curves
        self.measured: dict[str, Any] = {}  # each check's measurement, by check name, as the checks run
        self.probs = np.concatenate([f.probs for f in folds])
        self.labels = np.concatenate([f.labels for f in folds])
        self.preds = self.probs.argmax(1)
        self.paths = sum((f.paths for f in folds), [])
        self.speakers = sum((f.speakers for f in folds), [])
        self.genders = sum((f.genders for f in folds), [])
        self.durations = np.concatenate([f.durations for f in folds])
        self.confusion = S.confusion(self.labels, self.preds, self.C)
        self.prf = S.precision_recall_f1(self.confusion)
        self.train_counts = np.sum([f.train_counts for f in folds], axis=0).astype(float)

    @property
    def C(self) -> int:
        return len(self.class_names)

    @property
    def n(self) -> int:
        return int(len(self.labels))

    @property
    def ua(self) -> float:
        return S.ua(self.labels, self.preds, self.C)

    @property
    def wa(self) -> float:
        return float((self.labels == self.preds).mean())

    @property
    def macro_f1(self) -> float:
        return float(self.prf["f1"][self.prf["support"] > 0].mean())

    @property
    def recall(self) -> np.ndarray:
        return self.prf["recall"]

    @property
    def present(self) -> np.ndarray:
        """(C,) bool: classes the test labels hold (the ones UA averages over)."""
        return self.prf["support"] > 0

    @property
    def in_corpus(self) -> list[FoldResult]:
        """The folds tested on corpora they also trained on (all of them, but in cross-corpus runs)."""
        return [f for f in self.folds if not f.cross_corpus]

    def fold_weights(self) -> np.ndarray:
        return np.array([len(f.labels) for f in self.folds], float)

    def of(self, check: type) -> dict:
        """The measurement of the check class ``check`` (``Check.requires`` has it measured first); {} when it
        measured nothing."""
        if check.name not in self.measured:
            raise KeyError(f"{check.__name__} has not been measured: list it in the reading check's requires")
        return self.measured[check.name] or {}

    def per_fold(self, check: str) -> list[Any]:
        """What ``check`` measured on each fold (None where it measured nothing)."""
        return [f.extra.get(check) for f in self.folds]

    def pooled_mean(self, values: list[float]) -> float:
        """A per-fold number pooled as a test-size-weighted mean (NaN folds left out)."""
        v, w = np.array(values, float), self.fold_weights()
        keep = ~np.isnan(v)
        return float(np.average(v[keep], weights=w[keep])) if keep.any() else math.nan
