"""Per-stage emotion metrics (torchmetrics): UA, WA, macro-F1, per-class recall, confusion matrix."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassRecall,
)


class EmotionMetrics(nn.Module):
    """Accumulates predictions of one stage and reports them under ``<stage>/<name>``.

    UA (unweighted average recall) is the mean of per-class recalls, the usual headline for
    imbalanced emotion corpora, over the classes present in the labels: a test speaker without any
    disgust (EmoDB's speaker 08) has no disgust recall, rather than a recall of 0 whenever the model
    predicts disgust for them (torchmetrics' macro recall counts that class; sklearn's balanced
    accuracy, ``ser.baselines`` and the pooled CV summary do not). Macro-F1 averages over the same
classes, as ``ser.baselines`` does. WA is plain accuracy.
    """

    def __init__(self, class_names: list[str], stage: str):
        super().__init__()
        c = len(class_names)
        self.class_names, self.stage = list(class_names), stage
        self.wa = MulticlassAccuracy(c, average="micro")
        self.recall = MulticlassRecall(c, average="none")
        self.confmat = MulticlassConfusionMatrix(c)
        # The epoch's mean loss lives here too, so that every cross-rank sync happens in compute(),
        # in the same order on every rank (Lightning's sync_dist logging can interleave with it and hang DDP).
        self.loss = MeanMetric()

    def update(self, logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor | None = None) -> None:
        for metric in (self.wa, self.recall, self.confmat):
            metric.update(logits, labels)
        if loss is not None:
            self.loss.update(loss.detach(), weight=len(labels))

    def compute(self) -> tuple[dict[str, float], torch.Tensor]:
        """-> ({"<stage>/ua": ..., "<stage>/recall/<class>": ...}, confusion counts (C, C), rows = truth)."""
        s, counts = self.stage, self.confmat.compute()
        tp, support, predicted = counts.diag().double(), counts.sum(1), counts.sum(0)
        present = support > 0
        recall = tp / support.clamp(min=1)
        precision = tp / predicted.clamp(min=1)
        f1 = torch.where(tp > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0)
        nan = torch.tensor(float("nan"))
        ua = recall[present].mean() if present.any() else nan
        macro_f1 = f1[present].mean() if present.any() else nan
        scalars = {f"{s}/ua": ua, f"{s}/wa": self.wa.compute(), f"{s}/macro_f1": macro_f1}
        for name, value in zip(self.class_names, self.recall.compute()):
            scalars[f"{s}/recall/{name}"] = value
        if self.loss.update_count:
            scalars[f"{s}/loss"] = self.loss.compute()
        return {k: float(v) for k, v in scalars.items()}, counts

    def reset(self) -> None:
        for metric in (self.wa, self.recall, self.confmat, self.loss):
            metric.reset()
