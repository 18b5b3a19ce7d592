"""Clips in memory (waves, or a frozen upstream's cached frames), cropped per item, collated into padded batches."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ser.data.store import materialize


class ClipDataset(Dataset):
    """Decoded waves (T,) or cached upstream features (F, T'), and their class indices.

    Args:
        clips: mono float32 waves (T,) at the model's sample rate, or feature frames (F, T'), or
            ``ser.data.store.Stored`` handles of them, read per item.
        labels: class index per clip.
        max_len: longer clips are cropped to this many samples or frames (None keeps them whole).
        random_crop: crop at a random offset (training) rather than the centre (evaluation).
        speakers: speaker index per clip (for per-speaker normalisation); -1 everywhere when None.
        corpora: corpus index per clip (``data=multi``: per-corpus metrics and normalisation); 0 when None.
        variants: other versions of each clip, of its length (``ser.data.conditions``: degraded copies);
            an item is one of them, drawn uniformly, except with probability ``clean_p`` the clip itself.
    """

    def __init__(
        self,
        clips: list[torch.Tensor],
        labels: list[int],
        max_len: int | None = None,
        random_crop: bool = False,
        speakers: list[int] | None = None,
        corpora: list[int] | None = None,
        variants: list[list[torch.Tensor]] | None = None,
        clean_p: float = 1.0,
    ):
        self.clips, self.labels = clips, labels
        self.variants, self.clean_p = variants, clean_p
        self.speakers = speakers if speakers is not None else [-1] * len(clips)
        self.corpora = corpora if corpora is not None else [0] * len(clips)
        self.max_len, self.random_crop = max_len, random_crop

    def __len__(self) -> int:
        return len(self.clips)

    def lengths(self) -> list[int]:
        """Lengths (last axis) after cropping, for length-bucketed batching."""
        cap = self.max_len or max(c.shape[-1] for c in self.clips)
        return [min(c.shape[-1], cap) for c in self.clips]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, int, int]:
        clip = self.clips[i]
        if self.variants and self.variants[i] and float(torch.rand(())) >= self.clean_p:
            clip = self.variants[i][int(torch.randint(len(self.variants[i]), ()))]
        clip = materialize(clip)  # a stored upstream output is read here, per item
        if self.max_len and clip.shape[-1] > self.max_len:
            spare = clip.shape[-1] - self.max_len
            start = int(torch.randint(spare + 1, ()).item()) if self.random_crop else spare // 2
            clip = clip[..., start : start + self.max_len]
        return clip, self.labels[i], i, self.speakers[i], self.corpora[i]


def collate(items: list[tuple[torch.Tensor, int, int, int, int]]) -> dict[str, torch.Tensor]:
    """Zero-padded along time -> waves (B, T) float32 and lengths (B,) in samples, or, for cached upstream
    features, feats (B, F, T') in their stored precision (float16: half the memory and the copy to the
    device; the frontend's ``from_cache`` computes in float32) and frames (B,); with labels (B,), index (B,)
    into the dataset, speakers (B,) and corpora (B,)."""
    clips, labels, index, speakers, corpora = zip(*items)
    lengths = torch.tensor([c.shape[-1] for c in clips])
    waves = clips[0].dim() == 1
    dtype = torch.float32 if waves or not clips[0].is_floating_point() else clips[0].dtype
    batch = torch.zeros(len(clips), *clips[0].shape[:-1], int(lengths.max()), dtype=dtype)
    for row, c in zip(batch, clips):
        row[..., : c.shape[-1]] = c
    names = ("waves", "lengths") if waves else ("feats", "frames")
    return {names[0]: batch, names[1]: lengths, "labels": torch.tensor(labels), "index": torch.tensor(index),
            "speakers": torch.tensor(speakers), "corpora": torch.tensor(corpora)}
