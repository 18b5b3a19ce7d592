"""Batch samplers. Length bucketing keeps padding (wasted compute) small."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


def world() -> tuple[int, int]:
    """(number of processes, this process's rank) of the default process group; (1, 0) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def shard(batches: list[list[int]], pad: bool) -> list[list[int]]:
    """This rank's share of ``batches`` (every world-size-th batch; the list is the same on every rank).

    ``pad``: repeat batches from the start so every rank gets as many (training: DDP needs the same
    number of steps on every rank). Without it (evaluation) each item is seen exactly once overall.
    """
    replicas, rank = world()
    if replicas == 1:
        return batches
    if pad and len(batches) % replicas:
        batches = batches + batches[: replicas - len(batches) % replicas]
    return batches[rank::replicas]


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, in random order.

    Items are sorted by length with a little multiplicative jitter (so batches differ from
    epoch to epoch), cut into batches, and the batches are shuffled. With ``shuffle=False`` the
    order is fixed (evaluation). Deterministic given ``seed`` and the epoch (``set_epoch``).
    Under DDP every rank builds the same batches and keeps its own share (see ``shard``), so
    bucketing and class balancing survive distribution (set ``use_distributed_sampler=False``).

    Args:
        lengths: length of each item (samples).
        batch_size: items per batch; the last batch may be smaller.
        shuffle: shuffle batches and jitter lengths (training).
        seed: base seed.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"loader.batch_size must be positive, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        batches, (replicas, rank) = math.ceil(len(self.lengths) / self.batch_size), world()
        if replicas == 1:
            return batches
        if self.shuffle:
            return math.ceil(batches / replicas)
        return math.ceil(len(range(rank, len(self.lengths), replicas)) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        keys = self.lengths * np.exp(rng.uniform(-0.15, 0.15, len(self.lengths))) if self.shuffle else self.lengths
        order = np.argsort(keys, kind="stable")
        if not self.shuffle:
            # Evaluation under DDP: every rank takes every world-size-th item of the length order,
            # so each item is evaluated exactly once and every rank still has similar lengths.
            replicas, rank = world()
            order = order[rank::replicas]
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        if not self.shuffle:
            yield from batches
            return
        rng.shuffle(batches)
        yield from shard(batches, pad=True)


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
        yield from shard(batches, pad=True)
