"""A conv front that shrinks F (and T), then a bidirectional LSTM over time, then pooling."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ser.models.encoders.cnn import conv_stack, rows_after
from ser.models.encoders.lstm import run_lstm
from ser.models.pooling import AttentiveStatsPool


class CNNLSTMEncoder(nn.Module):
    """Args:
    in_features: F, the frontend's feature rows.
    depth: conv blocks (2); each halves F while two rows are left.
    channels: channels of the first block, doubled per block (16).
    max_channels: channel cap (32).
    time_pools: how many of the first blocks also halve T (2), so the LSTM reads fewer steps.
    hidden: LSTM units per direction (96).
    lstm_layers: stacked LSTM layers (1).
    dropout: after conv blocks and between LSTM layers (0.2).
    pooling: ``in_dim -> module`` (default ``AttentiveStatsPool``).
    """

    def __init__(
        self,
        in_features: int,
        depth: int = 2,
        channels: int = 16,
        max_channels: int = 32,
        time_pools: int = 2,
        hidden: int = 96,
        lstm_layers: int = 1,
        dropout: float = 0.2,
        pooling: Callable[[int], nn.Module] = AttentiveStatsPool,
    ):
        super().__init__()
        self.blocks = conv_stack(depth, channels, max_channels, time_pools, dropout, in_features)
        width = min(channels * 2 ** (depth - 1), max_channels)
        self.lstm = nn.LSTM(
            width * rows_after(in_features, depth),
            hidden,
            num_layers=lstm_layers,
            batch_first=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
            bidirectional=True,
        )
        self.pool = pooling(2 * hidden)
        self.out_dim = self.pool.out_dim

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, F, T), lengths (B,) -> (B, D)."""
        x = feats[:, None]  # (B, 1, F, T)
        for block in self.blocks:
            x, lengths = block(x, lengths)
        x = x.flatten(1, 2)  # (B, C, F', T') -> (B, C * F', T')
        return self.pool(run_lstm(self.lstm, x, lengths), lengths)
