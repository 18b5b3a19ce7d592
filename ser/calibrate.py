"""Temperature scaling (Guo et al. 2017): one number T per model, probabilities = softmax(logits / T).

T is fitted by minimising the negative log-likelihood of held-out speakers' labels: the validation
speakers, or, where a split has none (``split.val=0``), the out-of-fold predictions of models trained
with the same recipe on inner folds of the training speakers (``calibrate.inner_folds``). It changes
no prediction (the arg-max stays), only how far the probabilities can be trusted. ``ser.train`` stores
it in the tested checkpoint (the ``temperature`` buffer), so ``ser.predict``, ``ser.export`` and
``ser.diagnose`` read calibrated probabilities.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ser import rundir
from ser.data.splits import Fold

log = logging.getLogger(__name__)
BOUNDS = (0.05, 20.0)  # a temperature outside these says the held-out set is too small to fit one


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 that minimises the mean NLL of ``labels`` (N,) under softmax(``logits`` (N, C) / T)."""
    logits, labels = logits.detach().double(), labels.detach().long()
    if len(labels) == 0:
        raise ValueError("no held-out predictions to fit a temperature on")
    grid = torch.logspace(-1.3, 1.3, 53, dtype=torch.float64)  # 0.05 .. 20: a coarse search first, no local minima
    nll = torch.stack([torch.nn.functional.cross_entropy(logits / t, labels) for t in grid])
    log_t = grid[int(nll.argmin())].log().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(*BOUNDS))


def inner_folds(fold: Fold, speaker_of: list[str], k: int) -> list[Fold]:
    """``k`` folds over ``fold``'s training speakers (round-robin over their sorted ids), each holding one group
    out as its validation set; none when there are fewer than two training speakers."""
    speakers = sorted({speaker_of[i] for i in fold.train})
    k = min(int(k), len(speakers))
    if k < 2:
        return []
    groups = [set(speakers[j::k]) for j in range(k)]
    return [Fold(name=f"{fold.name}-inner{j + 1}", train=[i for i in fold.train if speaker_of[i] not in g],
                 val=[i for i in fold.train if speaker_of[i] in g], test=[], test_speakers=[])
            for j, g in enumerate(groups)]


def write_temperature(ckpt: str | Path, temperature: float) -> None:
    """Store ``temperature`` in a checkpoint written by ``ser.train`` (atomically)."""
    ckpt = Path(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state["state_dict"]["temperature"] = torch.tensor(float(temperature))
    rundir.atomic(ckpt, lambda tmp: torch.save(state, tmp))
