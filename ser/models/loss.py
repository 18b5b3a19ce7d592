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
        robust: ``gce``: generalized cross-entropy (Zhang & Sabuncu 2018), ``(1 - p_y^q) / q``, which
            bounds what one confidently wrong label can cost, so training goes through noisy labels;
            q -> 0 is cross-entropy, q = 1 mean absolute error. None: cross-entropy.
        gce_q: q of ``gce`` (0.7, the paper's choice).
        logit_adjust: tau > 0 trains on logits + tau * log(class prior) (the logit-adjusted loss, Menon et al.
            2021): the model learns to out-score the training frequencies, so at test time (plain logits) rare
            classes are no longer under-predicted; 1 is the Bayes-consistent choice for balanced error (UA).
    """

    def __init__(
        self,
        class_counts: Sequence[int],
        class_weighted: bool = False,
        weighting: str = "inverse",
        beta: float = 0.999,
        focal_gamma: float = 0.0,
        label_smoothing: float = 0.0,
        robust: str | None = None,
        gce_q: float = 0.7,
        logit_adjust: float = 0.0,
    ):
        super().__init__()
        if robust not in (None, "gce"):
            raise ValueError(f"loss.robust must be null or gce, got {robust!r}")
        if robust and focal_gamma > 0:
            raise ValueError("loss.robust=gce replaces focal cross-entropy: set loss.focal_gamma=0")
        if not 0 < gce_q <= 1:
            raise ValueError(f"loss.gce_q must be in (0, 1], got {gce_q}")
        self.robust, self.gce_q = robust, gce_q
        weight = class_weights(class_counts, weighting, beta) if class_weighted else torch.ones(len(class_counts))
        self.register_buffer("weight", weight)
        self.focal_gamma, self.label_smoothing = focal_gamma, label_smoothing
        counts = torch.tensor(class_counts, dtype=torch.float64).clamp_min(1)
        self.register_buffer("log_prior", (float(logit_adjust) * (counts / counts.sum()).log()).float(), persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float() + self.log_prior  # zeros unless loss.logit_adjust
        if self.robust == "gce":
            target = F.one_hot(labels, logits.shape[-1]).float()
            if self.label_smoothing > 0:  # over smoothed targets: sum_c t_c (1 - p_c^q) / q
                target = target * (1 - self.label_smoothing) + self.label_smoothing / logits.shape[-1]
            per_class = (1 - logits.softmax(-1).clamp_min(1e-7).pow(self.gce_q)) / self.gce_q
            w = self.weight[labels]
            return ((target * per_class).sum(-1) * w).sum() / w.sum()
        if self.focal_gamma <= 0:
            return F.cross_entropy(logits, labels, weight=self.weight, label_smoothing=self.label_smoothing)
        per_example = F.cross_entropy(logits, labels, reduction="none", label_smoothing=self.label_smoothing)
        p_true = logits.softmax(-1).gather(1, labels[:, None]).squeeze(1)
        w = self.weight[labels]
        return ((1 - p_true).pow(self.focal_gamma) * per_example * w).sum() / w.sum()
