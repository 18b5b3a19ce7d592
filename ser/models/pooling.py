"""Time pooling over valid frames: (B, C, T), lengths (B,) -> (B, D)."""

from __future__ import annotations

import torch
from torch import nn

from ser.nn import length_mask, masked_mean_std


class StatsPool(nn.Module):
    """Mean and standard deviation over valid frames; ``out_dim = 2 * in_dim``."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.out_dim = 2 * in_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mean, std = masked_mean_std(x, length_mask(lengths, x.shape[-1]))
        return torch.cat([mean, std], dim=-1)  # (B, C, T) -> (B, 2C)


class AttentiveStatsPool(nn.Module):
    """Attentive statistics pooling (Okabe et al. 2018): frames weighted by a learned score,
    then weighted mean and standard deviation; padding gets zero weight. ``out_dim = 2 * in_dim``.

    Args:
        in_dim: channels C.
        hidden: width of the scoring MLP (64).
    """

    def __init__(self, in_dim: int, hidden: int = 64):
        super().__init__()
        # No bias on the last layer: softmax over time ignores it, so it would never learn.
        self.score = nn.Sequential(nn.Conv1d(in_dim, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, 1, 1, bias=False))
        self.out_dim = 2 * in_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, x.shape[-1])  # (B, T)
        scores = self.score(x).squeeze(1).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=-1) * lengths[:, None].to(x.dtype)  # sums to the count
        mean, std = masked_mean_std(x, weights)
        return torch.cat([mean, std], dim=-1)  # (B, C, T) -> (B, 2C)
