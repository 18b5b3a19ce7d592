"""The numbers every layer reports, in one place: UA and the other scores of a confusion matrix, bootstrap
intervals, and the paired tests behind "did the change help?". Plain numpy and scipy; nothing of ``ser``.

UA (unweighted average recall) is the mean recall over the classes *present in the labels*: a test
speaker who never utters a class has no recall for it (EmoDB's speaker 08 and disgust), rather than a
recall of 0 whenever the model predicts that class. Macro-F1 averages over the same classes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats as scipy_stats

EXACT_UP_TO = 20  # pairs up to which the Wilcoxon test enumerates every sign pattern (2**20 of them)
SIGN_FLIPS = 20000  # sampled sign patterns of the sign-flip test beyond 16 pairs (exact up to there)


def confusion(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted.

    >>> confusion(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(preds)), 1)
    return counts


def recall_per_class(counts: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for classes absent from the truth."""
    support = counts.sum(1)
    return np.where(support > 0, np.diag(counts) / np.maximum(support, 1), np.nan)


def ua(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> float:
    """Unweighted average recall over the classes present in ``labels`` (NaN when there are none)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.nanmean(recall_per_class(confusion(labels, preds, n_classes))))


def precision_recall_f1(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from confusion counts (0 where undefined)."""
    tp = np.diag(counts).astype(float)
    predicted, support = counts.sum(0), counts.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def scores(counts: np.ndarray) -> dict:
    """UA, WA (accuracy) and macro-F1 over the present classes, and per-class recall (0 for an absent class),
    from (C, C) confusion counts; UA and macro-F1 are NaN without any label.

    >>> s = scores(np.array([[2, 0, 0], [1, 1, 0], [0, 0, 0]])); round(s["ua"], 3), round(s["wa"], 3)
    (0.75, 0.75)
    """
    counts = np.asarray(counts)
    prf = precision_recall_f1(counts)
    present = prf["support"] > 0
    return {"ua": float(prf["recall"][present].mean()) if present.any() else math.nan,
            "wa": float(np.trace(counts) / max(counts.sum(), 1)),
            "macro_f1": float(prf["f1"][present].mean()) if present.any() else math.nan,
            "recall": prf["recall"]}


def pearson(x, y) -> float:
    """Pearson correlation; NaN when either side is constant or fewer than 3 points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 3 or x.std() < 1e-9 or y.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def calibration(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """Reliability table and expected calibration error (ECE) of the top-class confidence.

    ECE = sum over equal-width confidence bins of (bin share) x |accuracy - mean confidence|.
    """
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            acc, conf = float(correct[sel].mean()), float(confidence[sel].mean())
            ece += sel.mean() * abs(acc - conf)
            table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(sel.sum()),
                          "accuracy": acc, "confidence": conf})
    return {"ece": float(ece), "bins": table, "mean_confidence": float(confidence.mean()),
            "accuracy": float(correct.mean())}


def bootstrap_interval(stat, n: int, rounds: int = 200, seed: int = 0, level: float = 0.9) -> tuple[float, float]:
    """The central ``level`` interval of ``stat(ix)`` over ``rounds`` resamples ``ix`` of ``range(n)``
    drawn with replacement (NaN values left out): how sure a number measured on ``n`` test utterances is."""
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n, n)) for _ in range(rounds)], float)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def two_sample_interval(stat_a, n_a: int, stat_b, n_b: int, rounds: int = 200, seed: int = 0,
                        level: float = 0.9) -> tuple[float, float]:
    """The central ``level`` interval of ``stat_a(ia) - stat_b(ib)``, each resampled from its own sample
    (``range(n_a)``, ``range(n_b)``) with replacement: how sure a difference between two test sets is."""
    rng = np.random.default_rng(seed)
    values = np.array([stat_a(rng.integers(0, n_a, n_a)) - stat_b(rng.integers(0, n_b, n_b)) for _ in range(rounds)],
                      float)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def auc(a, b) -> float:
    """P(x > y) + P(x = y) / 2 for x from ``a`` and y from ``b`` (the Mann-Whitney AUC): 0.5 when the two
    samples are alike, 1 (or 0) when every value of ``a`` lies above (or below) every value of ``b``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not len(a) or not len(b):
        return float("nan")
    _, inverse, counts = np.unique(np.concatenate([a, b]), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - counts + (counts + 1) / 2)[inverse]  # 1-based; ties share their mean rank
    return float((ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


def wilcoxon(d) -> float:
    """Two-sided p of the Wilcoxon signed-rank test on paired differences ``d`` (scipy): zeros dropped, tied
    ranks averaged; exact (every sign pattern, ties included) up to ``EXACT_UP_TO`` pairs, the normal
    approximation with the tie-corrected variance beyond. 1 when every difference is zero."""
    d = np.asarray(d, float)
    n = int((d != 0).sum())
    if n == 0:
        return 1.0
    method = scipy_stats.PermutationMethod(n_resamples=np.inf) if n <= EXACT_UP_TO else "asymptotic"
    return float(scipy_stats.wilcoxon(d, zero_method="wilcox", correction=False, method=method).pvalue)


def sign_flip_p(d, alternative: str = "two-sided", seed: int = 0) -> float:
    """p of the paired sign-flip (permutation) test on the mean of the differences ``d``: each pair's sign
    flipped at random under the null. ``greater``: one-sided, a mean change at least this large;
    ``two-sided``: at least this far from zero. Exact up to 16 pairs, ``SIGN_FLIPS`` draws beyond; NaN without pairs."""
    d = np.asarray(d, float)
    n = len(d)
    if n == 0:
        return float("nan")
    if n <= 16:
        signs = np.array(list(itertools.product([-1, 1], repeat=n)))
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(SIGN_FLIPS, n))
    null = (signs * np.abs(d)).mean(axis=1)
    if alternative == "greater":
        return float(np.mean(null >= d.mean() - 1e-12))
    if alternative != "two-sided":
        raise ValueError(f"alternative={alternative!r}: greater or two-sided")
    return float(np.mean(np.abs(null) >= abs(d.mean()) - 1e-12))

