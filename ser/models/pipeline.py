"""The one path from waves to logits (torch only, so ``ser.export`` loads without Lightning)."""

from __future__ import annotations

import torch
from torch import nn

from ser.features.normalize import FeatureNorm


class Pipeline:
    """The one path from waves to logits, shared by training, ``ser.export`` and ``ser.diagnose``:
    ``features`` (frontend, then normalisation) and ``classify`` (encoder, then head)."""

    frontend: nn.Module
    normalizer: FeatureNorm
    encoder: nn.Module
    head: nn.Module
    temperature: torch.Tensor  # a scalar buffer: 1 until ``ser.calibrate`` fits it on held-out speakers

    def features(self, waves: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor | None = None):
        """waves (B, T), lengths (B,) in samples -> normalised feats (B, F, T'), frames (B,);
        ``speakers`` (B,): the group index of each clip, only for normalize=speaker|corpus (``groups_of``)."""
        feats, frames = self.frontend(waves, lengths)  # (B, F, T'), (B,)
        return self.normalizer(feats, frames, speakers), frames

    def classify(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """feats (B, F, T'), frames (B,) -> logits (B, C)."""
        emb = self.encoder(feats, frames)  # (B, D)
        return self.head(emb, feats, frames)  # (B, C)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor | None = None) -> torch.Tensor:
        """waves (B, T), lengths (B,) in samples -> logits (B, C)."""
        return self.classify(*self.features(waves, lengths, speakers))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (B, C) -> calibrated class probabilities (B, C): softmax(logits / temperature)."""
        return (logits / self.temperature).softmax(-1)

    def groups_of(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The batch's group indices that the normalisation reads (speakers or corpora; None for none)."""
        key = self.normalizer.group_key
        return batch.get(key) if key else None
