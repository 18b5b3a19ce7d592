"""Numbers behind the diagnosis, as plain numpy functions of predictions (easy to test and reuse)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def confusion(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (labels, preds), 1)
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


def confused_pairs(counts: np.ndarray, k: int = 5) -> list[tuple[int, int, int, float]]:
    """The ``k`` largest off-diagonal cells: (true, predicted, count, share of the true class)."""
    off = counts.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:k]
    support = counts.sum(1)
    pairs = []
    for flat in order:
        i, j = np.unravel_index(flat, off.shape)
        if off[i, j] > 0:
            pairs.append((int(i), int(j), int(off[i, j]), float(off[i, j] / max(support[i], 1))))
    return pairs


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


def ua_by_group(groups, labels: np.ndarray, preds: np.ndarray, n_classes: int) -> dict[str, dict]:
    """UA, accuracy and size of each group (speaker, gender, fold ...), in sorted group order."""
    members = defaultdict(list)
    for i, g in enumerate(groups):
        members[str(g)].append(i)
    out = {}
    for g in sorted(members):
        ix = np.array(members[g])
        out[g] = {"n": len(ix), "ua": ua(labels[ix], preds[ix], n_classes), "wa": float((labels[ix] == preds[ix]).mean())}
    return out


def duration_buckets(durations: np.ndarray, n_buckets: int = 4) -> np.ndarray:
    """Bucket edges in seconds at the duration quantiles (rounded to 0.1 s, duplicates dropped)."""
    inner = np.unique(np.round(np.quantile(durations, np.linspace(0, 1, n_buckets + 1)[1:-1]), 1))
    return np.concatenate([[0.0], inner, [np.inf]])


def ua_by_duration(durations: np.ndarray, labels, preds, n_classes: int, n_buckets: int = 4) -> list[dict]:
    """UA per utterance-length bucket: [{low, high, n, ua, wa}]."""
    edges = duration_buckets(durations, n_buckets)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        sel = (durations >= low) & (durations < high)
        if sel.any():
            rows.append({"low": float(low), "high": float(high), "n": int(sel.sum()),
                         "ua": ua(labels[sel], preds[sel], n_classes), "wa": float((labels[sel] == preds[sel]).mean())})
    return rows
