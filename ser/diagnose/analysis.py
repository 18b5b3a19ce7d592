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


def stratified_folds(y: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """(N,) fold of each item: every class dealt round-robin over the folds after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    part = np.empty(len(y), dtype=int)
    for c in np.unique(y):
        ix = rng.permutation(np.flatnonzero(y == c))
        part[ix] = np.arange(len(ix)) % folds
    return part


def separability(embeddings: np.ndarray, groups, folds: int = 5, seed: int = 0, l2: float = 1e-2) -> float:
    """How well a linear classifier tells ``groups`` (e.g. corpora) apart from ``embeddings`` (N, D).

    Balanced accuracy of an L2-regularised logistic regression on standardised inputs, out of fold
    (``folds``-fold, stratified by group): about 1/K for K indistinguishable groups, 1 when the
    groups are linearly separable. NaN with fewer than two groups or too few items.
    """
    import torch

    names, y = np.unique(np.asarray(groups), return_inverse=True)
    counts = np.bincount(y)
    if len(names) < 2 or counts.min() < 2:
        return float("nan")
    folds = int(min(folds, counts.min()))
    part = stratified_folds(y, folds, seed)
    X = torch.as_tensor(np.asarray(embeddings, dtype=np.float64))
    target = torch.as_tensor(y)
    preds = np.empty(len(y), dtype=int)
    for k in range(folds):
        train, test = torch.as_tensor(part != k), torch.as_tensor(part == k)
        mean, std = X[train].mean(0), X[train].std(0).clamp_min(1e-6)
        Xs = (X - mean) / std
        W, b = logistic_regression(Xs[train], target[train], len(names), l2)
        with torch.no_grad():
            preds[test.numpy()] = (Xs[test] @ W + b).argmax(1).numpy()
    return float(np.mean([np.mean(preds[y == g] == g) for g in range(len(names))]))


def logistic_regression(X, y, n_classes: int, l2: float):
    """Multinomial logistic regression on tensors X (N, D), y (N,), each class weighted equally (balanced),
    mean cross-entropy plus ``l2`` times the squared weights, fitted by L-BFGS -> (W (D, C), b (C,))."""
    import torch

    W = torch.zeros(X.shape[1], n_classes, dtype=X.dtype, requires_grad=True)
    b = torch.zeros(n_classes, dtype=X.dtype, requires_grad=True)
    weight = (len(y) / (n_classes * torch.bincount(y, minlength=n_classes).clamp_min(1))).to(X.dtype)
    opt = torch.optim.LBFGS([W, b], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(X @ W + b, y, weight=weight) + l2 * (W**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach(), b.detach()


def corpus_shift(parts: list[dict], class_names: list[str]) -> dict | None:
    """The corpus-shift section from the folds' ``FoldResult.shift`` (None when no fold was cross-corpus).

    UA and per-class recall in-domain (held-out speakers of the training corpora) against
    cross-corpus (the test corpora), pooled over folds; which classes transfer (cross-corpus recall
    at least 70 % of in-domain and above chance) and which collapse (at chance or below); the
    corpus classifier's balanced accuracy on the model's embeddings (mean over folds).
    """
    parts = [p for p in parts if p]
    if not parts:
        return None
    C, chance = len(class_names), 1 / len(class_names)
    pooled = {}
    for side in ("in_domain", "cross"):
        labels = np.concatenate([p[side]["labels"] for p in parts])
        preds = np.concatenate([p[side]["preds"] for p in parts])
        pooled[side] = {"n": int(len(labels)), "ua": ua(labels, preds, C),
                        "recall": recall_per_class(confusion(labels, preds, C)).tolist()}
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
        "classes": classes,
        "corpus_accuracy": float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else float("nan"),
        "corpus_chance": float(np.mean(chances)),
    }


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


def auc(a, b) -> float:
    """P(x > y) + P(x = y) / 2 for x from ``a`` and y from ``b`` (the Mann-Whitney AUC): 0.5 when the two
    samples are alike, 1 (or 0) when every value of ``a`` lies above (or below) every value of ``b``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not len(a) or not len(b):
        return float("nan")
    _, inverse, counts = np.unique(np.concatenate([a, b]), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - counts + (counts + 1) / 2)[inverse]  # 1-based; ties share their mean rank
    return float((ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))
