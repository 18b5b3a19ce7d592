"""Padding masks and masked statistics over the time axis of (B, C, T) tensors."""

from __future__ import annotations

import torch


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean_std(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over valid frames.

    x (B, C, T), mask (B, T) bool or float weights summing to the count -> mean, std (B, C).
    """
    w = mask.to(x.dtype)[:, None, :]  # (B, 1, T)
    n = w.sum(-1).clamp_min(1.0)
    mean = (x * w).sum(-1) / n
    var = ((x - mean[..., None]) ** 2 * w).sum(-1) / n
    return mean, (var + eps).sqrt()
