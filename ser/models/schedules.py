"""Learning-rate schedules, built half-way by Hydra (``_partial_``) and finished with the step count."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup: float = 0.05, min_factor: float = 0.02) -> LambdaLR:
    """Linear warm-up over the first ``warmup`` share of steps, then cosine decay to ``min_factor``."""
    warm = max(1, int(warmup * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
