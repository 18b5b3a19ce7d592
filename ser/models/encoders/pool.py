"""Statistics pooling over frames with a small MLP: the SUPERB / EmoBox downstream for upstream features."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ser.models.pooling import StatsPool
from ser.nn import Standardize


class PoolEncoder(nn.Module):
    """An optional frame-wise projection, masked pooling over time, dropout, an optional MLP.

    Pretrained upstreams already model time; what is left is to summarise an utterance's frames and
    map the summary to emotions, which is what the SUPERB and EmoBox emotion baselines do.

    Args:
        in_features: F, the frontend's feature rows.
        proj: width of a frame-wise linear projection before pooling (0: pool the rows as they are).
        hidden: width of the MLP after pooling (0: none; the pooled statistics go to the head).
        layers: hidden layers of the MLP (1).
        dropout: on the pooled statistics (a regulariser for wide upstream features; on the frames it
            would cost as much as the rest of the model on a CPU) and in the MLP.
        standardize: standardise the pooled statistics with their mean and std over the training split
            (fixed before training, ``ser.nn.Standardize``), as a classical model does its
            utterance functionals; needs nothing trainable before the pooling (no ``proj``, ``StatsPool``).
        pooling: ``in_dim -> module`` (default ``StatsPool``: mean and std; or ``AttentiveStatsPool``).
    """

    def __init__(self, in_features: int, proj: int = 0, hidden: int = 256, layers: int = 1, dropout: float = 0.2,
                 standardize: bool = False, pooling: Callable[[int], nn.Module] = StatsPool):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Conv1d(in_features, proj, 1) if proj else nn.Identity()
        self.pool = pooling(proj or in_features)
        if standardize and any(p.requires_grad for p in [*self.proj.parameters(), *self.pool.parameters()]):
            raise ValueError("model.standardize=true fixes the statistics of the pooled features before training, so "
                             "nothing trainable may come before it: use model.proj=0 and StatsPool, "
                             "or model.standardize=false")
        self.norm = Standardize(self.pool.out_dim) if standardize else nn.Identity()
        mlp, width = [], self.pool.out_dim
        for _ in range(layers if hidden else 0):
            mlp += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.mlp = nn.Sequential(*mlp)
        self.out_dim = width

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, F, T), lengths (B,) -> (B, D)."""
        x = self.proj(feats)  # (B, F, T) -> (B, P, T)
        return self.mlp(self.drop(self.norm(self.pool(x, lengths))))  # (B, 2P) -> (B, D)
