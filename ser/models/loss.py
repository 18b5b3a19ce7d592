"""Classification loss with optional class weights from the training split's counts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def class_weights(counts: Sequence[int]) -> torch.Tensor:
    """Inverse-frequency weights, scaled so that the average weight per training example is 1.

    >>> class_weights([30, 10]).tolist()
    [0.6666666865348206, 2.0]
    """
    c = torch.tensor(counts, dtype=torch.float32)
    if (c <= 0).any():
        missing = [i for i, n in enumerate(counts) if n <= 0]
        raise ValueError(f"loss.class_weighted: classes {missing} have no training examples in this fold")
    return c.sum() / (len(c) * c)


class ClassificationLoss(nn.Module):
    """Cross-entropy over logits (B, C) and labels (B,).

    Args:
        class_counts: training examples per class (from the data module).
        class_weighted: weight classes by inverse training frequency, so rare classes count as much
            as common ones (the loss then targets UA rather than WA).
        label_smoothing: spread this much target mass over the other classes (0.0).
    """

    def __init__(self, class_counts: Sequence[int], class_weighted: bool = False, label_smoothing: float = 0.0):
        super().__init__()
        weight = class_weights(class_counts) if class_weighted else torch.ones(len(class_counts))
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, weight=self.weight, label_smoothing=self.label_smoothing)
