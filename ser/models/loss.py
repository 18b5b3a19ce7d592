"""Classification loss with optional class weights from the training split's counts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def class_weights(counts: Sequence[int], weighting: str = "inverse", beta: float = 0.999) -> torch.Tensor:
    """Per-class weights from training counts, scaled so the average weight per training example is 1.

    ``inverse``: 1 / n_c. ``effective``: (1 - beta) / (1 - beta^n_c), the effective number of
    samples (Cui et al. 2019), which flattens the inverse weights for large classes.

    >>> class_weights([30, 10]).tolist()
    [0.6666666865348206, 2.0]
    """
    c = torch.tensor(counts, dtype=torch.float64)
    if (c <= 0).any():
        missing = [i for i, n in enumerate(counts) if n <= 0]
        raise ValueError(f"loss.class_weighted: classes {missing} have no training examples in this fold")
    if weighting == "inverse":
        w = 1.0 / c
    elif weighting == "effective":
        w = (1 - beta) / (1 - beta**c)
    else:
        raise ValueError(f"loss.weighting must be inverse or effective, got {weighting!r}")
    return (w * c.sum() / (w * c).sum()).float()


class ClassificationLoss(nn.Module):
    """Cross-entropy (optionally focal) over logits (B, C) and labels (B,).

    Args:
        class_counts: training examples per class (from the data module).
        class_weighted: weight classes by their training frequency (``weighting``), so rare classes
            count as much as common ones: the loss then targets UA rather than WA.
        weighting: ``inverse`` or ``effective`` (effective number of samples, with ``beta``).
        beta: for ``effective`` weighting (0.999).
        focal_gamma: > 0 turns on focal loss (Lin et al. 2017): confident examples count less.
        label_smoothing: spread this much target mass over the other classes (0.0).
    """

    def __init__(
        self,
        class_counts: Sequence[int],
        class_weighted: bool = False,
        weighting: str = "inverse",
        beta: float = 0.999,
        focal_gamma: float = 0.0,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        weight = class_weights(class_counts, weighting, beta) if class_weighted else torch.ones(len(class_counts))
        self.register_buffer("weight", weight)
        self.focal_gamma, self.label_smoothing = focal_gamma, label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.focal_gamma <= 0:
            return F.cross_entropy(logits, labels, weight=self.weight, label_smoothing=self.label_smoothing)
        per_example = F.cross_entropy(logits, labels, reduction="none", label_smoothing=self.label_smoothing)
        p_true = logits.softmax(-1).gather(1, labels[:, None]).squeeze(1)
        w = self.weight[labels]
        return ((1 - p_true).pow(self.focal_gamma) * per_example * w).sum() / w.sum()
