"""Building blocks every layer uses, and that import nothing of ``ser``: padding masks, masked statistics
over the time axis of (B, C, T) tensors, running moments, and a fixed standardisation of (B, D) vectors."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


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


class Moments:
    """Running sum, sum of squares and frame count per feature row and group (float64).

    >>> m = Moments(groups=1, rows=2); m.add(torch.ones(1, 2, 5), torch.tensor([3])); m.count.item()
    3.0
    """

    CHUNK = 2**22  # values per slice in ``add`` (32 MB of float64)

    def __init__(self, groups: int, rows: int, device: torch.device | str = "cpu"):
        self.total = torch.zeros(groups, rows, dtype=torch.float64, device=device)
        self.total_sq = torch.zeros_like(self.total)
        self.count = torch.zeros(groups, 1, dtype=torch.float64, device=device)

    @torch.no_grad()
    def add(self, feats: torch.Tensor, frames: torch.Tensor, group: torch.Tensor | None = None) -> None:
        """Valid frames of feats (B, F, T') with frame lengths (B,); ``group`` (B,) picks the row of each clip.

        Rows go in slices of about ``CHUNK`` values: a batch of an SSL model's 13 x 768 rows is 256 MB in
        float32, and its float64 copies (the value, masked, squared) would be three times that at once."""
        device = self.total.device
        mask = length_mask(frames.to(device).clamp(max=feats.shape[-1]), feats.shape[-1])[:, None, :].double()
        group = torch.zeros(len(feats), dtype=torch.long, device=device) if group is None else group.to(device)
        step = max(1, self.CHUNK // max(1, feats.shape[0] * feats.shape[-1]))
        for start in range(0, feats.shape[1], step):
            x = feats[:, start:start + step].to(self.total) * mask  # padding frames count as nothing
            self.total[:, start:start + step].index_add_(0, group, x.sum(2))
            self.total_sq[:, start:start + step].index_add_(0, group, x.square_().sum(2))
        self.count.index_add_(0, group, mask.sum(2))

    def all_reduce(self) -> Moments:
        """Sum across DDP ranks (each rank saw its share of the batches); a no-op without DDP."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for part in (self.total, self.total_sq, self.count):
                torch.distributed.all_reduce(part)
        return self

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(groups, F) mean and standard deviation (floored at 1e-4), float32."""
        mean = self.total / self.count.clamp_min(1)
        var = (self.total_sq / self.count.clamp_min(1) - mean**2).clamp_min(1e-8)
        return mean.float(), var.sqrt().float()

    @classmethod
    def of(cls, pairs: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]], groups: int, rows: int,
           device: torch.device | str = "cpu") -> Moments:
        """Moments of an iterable of (feats (B, F, T'), frames (B,), group (B,) or None), reduced across ranks."""
        moments = cls(groups, rows, device)
        for feats, frames, group in pairs:
            moments.add(feats, frames, group)
        return moments.all_reduce()


class Standardize(nn.Module):
    """(B, D) vectors -> mean 0, std 1 per dimension, with statistics fixed before training.

    What a classical model's ``StandardScaler`` does for utterance functionals, inside a network:
    ``ser.callbacks.FitFeatureNorm`` runs the training split through the model once and hands this
    module the moments of its input. Until then it passes its input through unchanged. Meant for
    inputs that no trainable layer precedes (they must not drift while the model trains).

    Args:
        num_features: D.
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.register_buffer("fitted", torch.tensor(False))

    def fit(self, moments: Moments) -> None:
        mean, std = moments.mean_std()
        self.mean.copy_(mean[0])
        self.std.copy_(std[0])
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std  # (B, D); the identity until fitted (mean 0, std 1)
