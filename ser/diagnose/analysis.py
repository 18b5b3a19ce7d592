"""Tables behind the diagnosis report, from predictions: the most confused pairs, UA per group and per
utterance length, and the corpus-shift summary. The scores themselves come from ``ser.stats``."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ser.probe import separability
from ser.stats import confusion, recall_per_class, two_sample_interval, ua


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








def corpus_shift(parts: list[dict], class_names: list[str], rounds: int = 200, seed: int = 0) -> dict | None:
    """The corpus-shift section from the folds' ``FoldResult.shift`` (None when no fold was cross-corpus).

    UA and per-class recall in-domain (held-out speakers of the training corpora) against
    cross-corpus (the test corpora), pooled over folds; which classes transfer (cross-corpus recall
    at least 70 % of in-domain and above chance) and which collapse (at chance or below); the
    corpus classifier's balanced accuracy on the model's embeddings (mean over folds); the gap's 90 % bootstrap
    interval (``rounds`` resamples of each side).
    """
    parts = [p for p in parts if p]
    if not parts:
        return None
    C, chance = len(class_names), 1 / len(class_names)
    pooled, stat = {}, {}
    for side in ("in_domain", "cross"):
        labels = np.concatenate([p[side]["labels"] for p in parts])
        preds = np.concatenate([p[side]["preds"] for p in parts])
        pooled[side] = {"n": int(len(labels)), "ua": ua(labels, preds, C),
                        "recall": recall_per_class(confusion(labels, preds, C)).tolist()}
        stat[side] = lambda ix, labels=labels, preds=preds: ua(labels[ix], preds[ix], C)
    classes = []
    for c, name in enumerate(class_names):
        a, b = pooled["in_domain"]["recall"][c], pooled["cross"]["recall"][c]
        verdict = ("n/a" if np.isnan(a) or np.isnan(b) else "collapses" if b <= chance
                   else "transfers" if b >= 0.7 * a else "degrades")
        classes.append({"class": name, "in_domain": a, "cross": b, "verdict": verdict})
    scores, chances = [], []
    for p in parts:
        emb = np.concatenate([p["in_domain"]["embeddings"], p["cross"]["embeddings"]])
        which = p["in_domain"]["corpus"] + p["cross"]["corpus"]
        scores.append(separability(emb, which))
        chances.append(1 / len(set(which)))
    return {
        "directions": [f"{' + '.join(p['train_corpora'])} -> {' + '.join(p['test_corpora'])}" for p in parts],
        "train_corpora": sorted({c for p in parts for c in p["train_corpora"]}),
        "test_corpora": sorted({c for p in parts for c in p["test_corpora"]}),
        "in_domain_from": parts[0]["in_domain_from"],
        "in_domain": pooled["in_domain"],
        "cross": pooled["cross"],
        "gap": pooled["in_domain"]["ua"] - pooled["cross"]["ua"],
        "interval": two_sample_interval(stat["in_domain"], pooled["in_domain"]["n"], stat["cross"], pooled["cross"]["n"],
                                        rounds, seed),
        "classes": classes,
        "corpus_accuracy": float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else float("nan"),
        "corpus_chance": float(np.mean(chances)),
    }



