"""Standardisation that weighs blocks of columns equally (needs scikit-learn, the ``baselines`` extra)."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


class BlockScaler(StandardScaler):
    """A ``StandardScaler``, then each block of columns scaled so every block carries the same total
    variance: with ``features=[compare,ge2e]``, 6373 ComParE columns would otherwise drown 1536 GE2E ones.

    Args:
        blocks: the width of each block, in column order (None or one block: plain standardisation).
    """

    def __init__(self, blocks: list[int] | None = None):
        super().__init__()
        self.blocks = blocks

    def transform(self, X, copy=None):
        X = super().transform(X, copy=copy)
        if self.blocks and len(self.blocks) > 1:
            total = sum(self.blocks)
            X = X * np.concatenate([np.full(n, np.sqrt(total / (len(self.blocks) * n))) for n in self.blocks])
        return X
