"""Per-stage emotion metrics: the confusion matrix accumulated by torchmetrics (synchronised across DDP
ranks), the scores computed from it by ``ser.stats`` (UA, WA, macro-F1, per-class recall)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from ser import stats


class EmotionMetrics(nn.Module):
    """Accumulates predictions of one stage and reports them under ``<stage>/<name>``: ``ua`` (the mean recall
    over the classes present in the labels, ``ser.stats``), ``wa``, ``macro_f1``, ``recall/<class>``, ``loss``.
    """

    def __init__(self, class_names: list[str], stage: str):
        super().__init__()
        self.class_names, self.stage = list(class_names), stage
        self.confmat = MulticlassConfusionMatrix(len(class_names))
        # The epoch's mean loss lives here too, so that every cross-rank sync happens in compute(),
        # in the same order on every rank (Lightning's sync_dist logging can interleave with it and hang DDP).
        self.loss = MeanMetric()

    def update(self, logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor | None = None) -> None:
        self.confmat.update(logits, labels)
        if loss is not None:
            self.loss.update(loss.detach(), weight=len(labels))

    def compute(self) -> tuple[dict[str, float], torch.Tensor]:
        """-> ({"<stage>/ua": ..., "<stage>/recall/<class>": ...}, confusion counts (C, C), rows = truth)."""
        s, counts = self.stage, self.confmat.compute()
        got = stats.scores(counts.cpu().numpy())
        scalars = {f"{s}/ua": got["ua"], f"{s}/wa": got["wa"], f"{s}/macro_f1": got["macro_f1"]}
        for name, value in zip(self.class_names, got["recall"]):
            scalars[f"{s}/recall/{name}"] = value
        if self.loss.update_count:
            scalars[f"{s}/loss"] = self.loss.compute()
        return {k: float(v) for k, v in scalars.items()}, counts

    def reset(self) -> None:
        for metric in (self.confmat, self.loss):
            metric.reset()
