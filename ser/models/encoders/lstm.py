"""Bidirectional LSTM over frames (packed, so padding never enters), then pooling."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ser.models.pooling import AttentiveStatsPool
from ser.nn import length_mask


class LSTMEncoder(nn.Module):
    """Args:
    in_features: F, the frontend's feature rows.
    stack: frames stacked into one LSTM step (4): 40 ms steps are fine for prosody and make
        the recurrence, which cannot be parallelised over time, four times shorter.
    hidden: units per direction (128).
    depth: stacked LSTM layers (2).
    dropout: between layers and on the input (0.2).
    bidirectional: read both directions (True).
    pooling: ``in_dim -> module`` (default ``AttentiveStatsPool``).
    """

    def __init__(
        self,
        in_features: int,
        stack: int = 4,
        hidden: int = 128,
        depth: int = 2,
        dropout: float = 0.2,
        bidirectional: bool = True,
        pooling: Callable[[int], nn.Module] = AttentiveStatsPool,
    ):
        super().__init__()
        self.stack = stack
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            in_features * stack,
            hidden,
            num_layers=depth,
            batch_first=True,
            dropout=dropout if depth > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.pool = pooling(hidden * (2 if bidirectional else 1))
        self.out_dim = self.pool.out_dim

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, F, T), lengths (B,) -> (B, D)."""
        feats, lengths = stack_frames(feats, lengths, self.stack)  # (B, F, T) -> (B, F * stack, T / stack)
        return self.pool(run_lstm(self.lstm, self.drop(feats), lengths), lengths)


def stack_frames(x: torch.Tensor, lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, F, T) -> (B, F * k, ceil(T / k)): each step holds k consecutive frames (zero-padded)."""
    if k == 1:
        return x, lengths
    b, f, t = x.shape
    steps = (t + k - 1) // k
    x = nn.functional.pad(x, (0, steps * k - t))
    x = x.reshape(b, f, steps, k).permute(0, 1, 3, 2).reshape(b, f * k, steps)
    return x, (lengths + k - 1) // k


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, F, T) -> (B, H, T) through a batch_first LSTM on packed sequences; padding stays 0."""
    if torch.compiler.is_exporting() or torch.jit.is_tracing():
        return run_lstm_unpacked(lstm, x, lengths)
    packed = pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[-1])  # (B, T, H)
    return out.transpose(1, 2)


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, H): reverse each sequence within its length; padding stays where it was."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
    return x.gather(1, index[..., None].expand_as(x))


def run_lstm_unpacked(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The same as ``run_lstm`` without packed sequences, for export (TorchScript tracing, ONNX).

    Each layer and direction runs as a one-layer LSTM over the padded batch: forward on the
    sequence as is (padding comes after the valid steps, so it cannot reach them), backward on
    each sequence reversed within its own length. Evaluation only (no dropout between layers).
    """
    y = x.transpose(1, 2)  # (B, T, F)
    mask = length_mask(lengths, y.shape[1])[..., None].to(y.dtype)  # (B, T, 1)
    directions = 2 if lstm.bidirectional else 1
    for layer in range(lstm.num_layers):
        outs = []
        for d in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            params = [getattr(lstm, f"{w}{suffix}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            seq = reverse_valid(y, lengths) if d else y
            zeros = y.new_zeros(1, y.shape[0], lstm.hidden_size)
            out = torch.lstm(seq, (zeros, zeros), params, True, 1, 0.0, False, False, True)[0]
            outs.append(reverse_valid(out, lengths) if d else out)
        y = torch.cat(outs, dim=-1) * mask
    return y.transpose(1, 2)
