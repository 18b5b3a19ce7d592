"""Linear probes: what a set of utterance features holds about a label, measured out of sample.

One solver (multinomial logistic regression, class-balanced, L2, fitted by L-BFGS in torch: the
solution scikit-learn's ``LogisticRegression`` finds, in a quarter of its time here) behind every probe
of the project: the diagnosis's feature and label-quality probes, and how well an embedding tells
corpora apart. Imports nothing of ``ser``.
"""

from __future__ import annotations

import numpy as np
import torch

# logistic regression on standardised utterance features, L2 as scikit-learn's C; ser.baselines' search mostly picks it
PROBE_C = 0.1
CV_FOLDS = 5  # out-of-sample predictions: each row predicted by a probe trained on the other folds


def logistic_regression(X: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on tensors X (N, D), y (N,), each class weighted equally (balanced),
    mean cross-entropy plus ``l2`` times the squared weights, fitted by L-BFGS -> (W (D, C), b (C,))."""
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


class Probe:
    """Standardisation with the training rows' moments, then class-balanced multinomial logistic
    regression with scikit-learn's L2 at C=``PROBE_C`` (``logistic_regression``).

    Args:
        X: (N, D) training rows; y: (N,) their classes; n_classes: C.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, n_classes: int):
        X = torch.as_tensor(np.asarray(X, dtype=np.float64))
        self.mean, self.std = X.mean(0), X.std(0).clamp_min(1e-6)
        self.W, self.b = logistic_regression((X - self.mean) / self.std, torch.as_tensor(np.asarray(y)), n_classes,
                                             l2=1 / (2 * PROBE_C * len(X)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(M, D) rows -> (M, C) class probabilities."""
        X = (torch.as_tensor(np.asarray(X, dtype=np.float64)) - self.mean) / self.std
        return torch.softmax(X @ self.W + self.b, dim=1).numpy()


def stratified_folds(y: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """(N,) fold of each item: every class dealt round-robin over the folds after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    part = np.empty(len(y), dtype=int)
    for c in np.unique(y):
        ix = rng.permutation(np.flatnonzero(y == c))
        part[ix] = np.arange(len(ix)) % folds
    return part


def out_of_sample(X: np.ndarray, y: np.ndarray, C: int, seed: int) -> np.ndarray:
    """(N, C) probabilities of each row's class from a ``Probe`` trained on the other folds (stratified,
    ``CV_FOLDS`` or as many as the rarest class allows); uniform when a class has a single row."""
    counts = np.bincount(y, minlength=C)
    k = int(min(CV_FOLDS, counts[counts > 0].min()))
    if k < 2:
        return np.full((len(y), C), 1 / C)
    part = stratified_folds(y, k, seed)
    probs = np.zeros((len(y), C))
    for fold in range(k):
        probs[part == fold] = Probe(X[part != fold], y[part != fold], C).predict_proba(X[part == fold])
    return probs


def separability(embeddings: np.ndarray, groups, folds: int = 5, seed: int = 0, l2: float = 1e-2) -> float:
    """How well a linear classifier tells ``groups`` (e.g. corpora) apart from ``embeddings`` (N, D).

    Balanced accuracy of an L2-regularised logistic regression on standardised inputs, out of fold
    (``folds``-fold, stratified by group): about 1/K for K indistinguishable groups, 1 when the
    groups are linearly separable. NaN with fewer than two groups or too few items.
    """
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


def per_speaker(X: np.ndarray, speakers: list[str]) -> np.ndarray:
    """Standardise each speaker's rows with that speaker's own mean and std (transductive: the test
    speaker's unlabelled utterances are used)."""
    X = X.copy()
    for spk in sorted(set(speakers)):
        rows = np.array([s == spk for s in speakers])
        X[rows] = (X[rows] - X[rows].mean(0)) / (X[rows].std(0) + 1e-8)
    return X
