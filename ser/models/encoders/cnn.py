"""2-D CNN over the (F, T) plane, then masked pooling over time."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ser.models.pooling import StatsPool
from ser.nn import length_mask


class ConvBlock(nn.Module):
    """Conv3x3 -> BatchNorm -> ReLU -> MaxPool(pool_f, pool_t), padding re-zeroed after.

    Re-zeroing the padded frames keeps a clip's output the same alone and inside a batch.
    """

    def __init__(self, c_in: int, c_out: int, pool_f: int = 2, pool_t: int = 2, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d((pool_f, pool_t)),
            nn.Dropout2d(dropout),
        )
        self.pool_t = pool_t

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.body(x)  # (B, C, F, T) -> (B, C', F / pool_f, T / pool_t)
        lengths = (lengths // self.pool_t).clamp(min=1)
        return x * length_mask(lengths, x.shape[-1])[:, None, None, :], lengths


def conv_stack(depth: int, channels: int, max_channels: int, time_pools: int, dropout: float,
               in_features: int) -> nn.ModuleList:
    """``depth`` blocks over ``in_features`` rows, channels doubling up to ``max_channels``; each halves F while two
    rows are left (4 MFCCs under 3 blocks: 4 -> 2 -> 1 -> 1), the first ``time_pools`` halve T."""
    widths = [min(channels * 2**i, max_channels) for i in range(depth)]
    pools = [2 if in_features // 2**i >= 2 else 1 for i in range(depth)]
    return nn.ModuleList(
        ConvBlock(c_in, c_out, pool_f, 2 if i < time_pools else 1, dropout)
        for i, (c_in, c_out, pool_f) in enumerate(zip([1] + widths[:-1], widths, pools))
    )


def rows_after(in_features: int, depth: int) -> int:
    """Feature rows left after ``conv_stack``'s ``depth`` blocks."""
    return max(in_features // 2**depth, 1)


class CNNEncoder(nn.Module):
    """Conv blocks over (F, T), mean over frequency, masked pooling over time.

    Args:
        in_features: F, the frontend's feature rows.
        depth: conv blocks (3); each halves T, and F while two rows are left.
        channels: channels of the first block, doubled per block (16).
        max_channels: channel cap (128).
        dropout: spatial dropout after each block (0.1).
        pooling: ``in_dim -> module`` making the time pooling (default ``StatsPool``).
    """

    def __init__(
        self,
        in_features: int,
        depth: int = 3,
        channels: int = 16,
        max_channels: int = 128,
        dropout: float = 0.1,
        pooling: Callable[[int], nn.Module] = StatsPool,
    ):
        super().__init__()
        self.blocks = conv_stack(depth, channels, max_channels, depth, dropout, in_features)
        width = min(channels * 2 ** (depth - 1), max_channels)
        self.pool = pooling(width)
        self.out_dim = self.pool.out_dim

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, F, T), lengths (B,) -> (B, D)."""
        x = feats[:, None]  # (B, 1, F, T)
        for block in self.blocks:
            x, lengths = block(x, lengths)
        return self.pool(x.mean(dim=2), lengths)  # (B, C, F', T') -> (B, C, T') -> (B, D)
