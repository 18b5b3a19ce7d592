"""Batch samplers. Length bucketing keeps padding (wasted compute) small."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, in random order.

    Items are sorted by length with a little multiplicative jitter (so batches differ from
    epoch to epoch), cut into batches, and the batches are shuffled. With ``shuffle=False`` the
    order is fixed (evaluation). Deterministic given ``seed`` and the epoch (``set_epoch``).

    Args:
        lengths: length of each item (samples).
        batch_size: items per batch; the last batch may be smaller.
        shuffle: shuffle batches and jitter lengths (training).
        seed: base seed.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be positive, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        keys = self.lengths * np.exp(rng.uniform(-0.15, 0.15, len(self.lengths))) if self.shuffle else self.lengths
        order = np.argsort(keys, kind="stable")
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        yield from batches


class BalancedBatchSampler(BucketBatchSampler):
    """Class-balanced batches: each epoch draws as many items as the dataset holds, with
    replacement, each class equally likely (rare classes are oversampled), then buckets them by
    length like ``BucketBatchSampler``.

    Args:
        labels: class index of each item.
        Other arguments as ``BucketBatchSampler``.
    """

    def __init__(self, lengths: Sequence[int], labels: Sequence[int], batch_size: int, seed: int = 0):
        super().__init__(lengths, batch_size, shuffle=True, seed=seed)
        labels = np.asarray(labels)
        counts = np.bincount(labels)
        self.probs = 1.0 / counts[labels]
        self.probs /= self.probs.sum()

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        drawn = rng.choice(len(self.lengths), size=len(self.lengths), replace=True, p=self.probs)
        keys = self.lengths[drawn] * np.exp(rng.uniform(-0.15, 0.15, len(drawn)))
        order = drawn[np.argsort(keys, kind="stable")]
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        rng.shuffle(batches)
        yield from batches
