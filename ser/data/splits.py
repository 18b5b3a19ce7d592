"""Speaker-independent splits. Each split yields ``Fold`` objects of utterance indices.

Published SER numbers mean little unless the test speakers are unseen in training, so every
split here keeps speakers disjoint between train, val and test, and ``check_disjoint`` guards it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ser.corpora.utterance import Utterance


@dataclass
class Fold:
    """Indices into the corpus's utterance list for one train/val/test partition."""

    name: str
    train: list[int]
    val: list[int]
    test: list[int]
    test_speakers: list[str] = field(default_factory=list)


def speakers_of(utterances: Sequence[Utterance], indices) -> set[str]:
    return {utterances[i].speaker for i in indices}


def check_disjoint(utterances: Sequence[Utterance], fold: Fold) -> None:
    """Fail when a speaker is in more than one of train, val and test."""
    train, val, test = (speakers_of(utterances, ix) for ix in (fold.train, fold.val, fold.test))
    for a, b, names in ((train, test, "train and test"), (train, val, "train and val"), (val, test, "val and test")):
        shared = sorted(a & b)
        if shared:
            raise ValueError(
                f"fold {fold.name}: speakers {shared} are in both {names}; results would be inflated. "
                "Use a speaker-independent split (split=holdout|loso|kfold), or split=random to accept it knowingly."
            )


def _pick(pool: list[str], spec, rng, what: str) -> list[str]:
    """Speakers from a list (kept as given) or a fraction of ``pool`` (at least one)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if not 0 < spec < 1:
            raise ValueError(f"split.{what}: a fraction must lie in (0, 1), got {spec}")
        k = max(1, int(round(spec * len(pool))))
        return sorted(rng.permutation(pool)[:k].tolist())
    chosen = [str(s) for s in spec]
    missing = sorted(set(chosen) - set(pool))
    if missing:
        raise ValueError(f"split.{what}: speakers {missing} are not in the corpus; available: {pool}")
    return chosen


class HoldoutSplit:
    """One speaker-independent train/val/test partition.

    Args:
        test: test speakers, as a list of ids or a fraction of all speakers (default 0.2).
        val: validation speakers, a list or a fraction of the remaining (training) speakers.
        seed: picks the speakers when given as fractions.
    """

    def __init__(self, test: float | Sequence[str] = 0.2, val: float | Sequence[str] = 0.2, seed: int = 0):
        self.test, self.val, self.seed = test, val, seed

    def folds(self, utterances: Sequence[Utterance]) -> list[Fold]:
        speakers = sorted({u.speaker for u in utterances})
        if len(speakers) < 3:
            raise ValueError(
                f"a speaker-independent holdout needs 3 speakers or more (train, val, test); this corpus has "
                f"{speakers}. Use split=random to split utterances instead (speakers will leak)."
            )
        rng = np.random.default_rng(self.seed)
        test = _pick(speakers, self.test, rng, "test")
        rest = [s for s in speakers if s not in test]
        val = _pick(rest, self.val, rng, "val")
        if set(val) & set(test):
            raise ValueError(f"split: speakers {sorted(set(val) & set(test))} are both val and test speakers")
        train = [s for s in rest if s not in val]
        if not train:
            raise ValueError(f"split: no training speakers left after test {test} and val {val}")
        by = {"train": [], "val": [], "test": []}
        for i, u in enumerate(utterances):
            by["test" if u.speaker in test else "val" if u.speaker in val else "train"].append(i)
        fold = Fold("holdout", by["train"], by["val"], by["test"], test_speakers=test)
        check_disjoint(utterances, fold)
        return [fold]
