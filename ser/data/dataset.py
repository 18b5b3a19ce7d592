"""Waves in memory, cropped per item, collated into zero-padded batches."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class WaveDataset(Dataset):
    """Decoded waves and their class indices.

    Args:
        waves: mono float32 tensors (T,), already at the model's sample rate.
        labels: class index per wave.
        max_samples: longer waves are cropped to this many samples (None keeps them whole).
        random_crop: crop at a random offset (training) rather than the centre (evaluation).
        speakers: speaker index per wave (for per-speaker normalisation); -1 everywhere when None.
    """

    def __init__(
        self,
        waves: list[torch.Tensor],
        labels: list[int],
        max_samples: int | None = None,
        random_crop: bool = False,
        speakers: list[int] | None = None,
    ):
        self.waves, self.labels = waves, labels
        self.speakers = speakers if speakers is not None else [-1] * len(waves)
        self.max_samples, self.random_crop = max_samples, random_crop

    def __len__(self) -> int:
        return len(self.waves)

    def lengths(self) -> list[int]:
        """Lengths after cropping, for length-bucketed batching."""
        cap = self.max_samples or max(w.numel() for w in self.waves)
        return [min(w.numel(), cap) for w in self.waves]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, int]:
        wave = self.waves[i]
        if self.max_samples and wave.numel() > self.max_samples:
            spare = wave.numel() - self.max_samples
            start = int(torch.randint(spare + 1, ()).item()) if self.random_crop else spare // 2
            wave = wave[start : start + self.max_samples]
        return wave, self.labels[i], i, self.speakers[i]


def collate(items: list[tuple[torch.Tensor, int, int, int]]) -> dict[str, torch.Tensor]:
    """-> waves (B, T) zero-padded, lengths (B,), labels (B,), index (B,) into the dataset, speakers (B,)."""
    waves, labels, index, speakers = zip(*items)
    lengths = torch.tensor([w.numel() for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for row, w in zip(batch, waves):
        row[: w.numel()] = w
    return {"waves": batch, "lengths": lengths, "labels": torch.tensor(labels), "index": torch.tensor(index),
            "speakers": torch.tensor(speakers)}
