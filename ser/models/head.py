"""The classification head: pooled embedding (B, D) -> logits (B, C)."""

from __future__ import annotations

import torch
from torch import nn

from ser.nn import length_mask, masked_mean_std


class Head(nn.Sequential):
    """Dropout then a linear layer over the encoder's embedding.

    With ``input_stats=F`` (the frontend's rows), the mean and standard deviation of the encoder's
    input features over valid frames (B, 2F) join the embedding: a linear "functionals" path beside
    the deep one, which is what the classical baselines (``ser.baselines``) are made of and what
    generalises best to unseen speakers on small corpora.

    Args:
        in_dim: embedding width D (``encoder.out_dim``).
        n_classes: logits C.
        dropout: dropout before the linear layer.
        input_stats: F to add the input statistics, 0 (default) for the embedding alone.
    """

    def __init__(self, in_dim: int, n_classes: int, dropout: float = 0.0, input_stats: int = 0):
        # A Sequential (keys 0 and 1), so checkpoints from before input_stats existed still load.
        super().__init__(nn.Dropout(dropout), nn.Linear(in_dim + 2 * input_stats, n_classes))
        self.input_stats = input_stats > 0

    def forward(
        self, emb: torch.Tensor, feats: torch.Tensor | None = None, frames: torch.Tensor | None = None
    ) -> torch.Tensor:
        """emb (B, D), feats (B, F, T') and frame lengths (B,) -> logits (B, C)."""
        if self.input_stats:
            mean, std = masked_mean_std(feats, length_mask(frames, feats.shape[-1]))  # (B, F) each
            emb = torch.cat([emb, mean, std], dim=-1)
        return super().forward(emb)
