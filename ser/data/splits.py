"""Speaker-independent splits. Each split yields ``Fold`` objects of utterance indices.

Published SER numbers mean little unless the test speakers are unseen in training, so every
split here keeps speakers disjoint between train, val and test, and ``check_disjoint`` guards it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ser.corpora.multi import corpus_of
from ser.corpora.utterance import Utterance

log = logging.getLogger(__name__)


@dataclass
class Fold:
    """Indices into the corpus's utterance list for one train/val/test partition."""

    name: str
    train: list[int]
    val: list[int]
    test: list[int]
    test_speakers: list[str] = field(default_factory=list)
    speaker_independent: bool = True  # False only for split=random, which says so loudly
    val_from_train_speakers: bool = False  # a two-speaker corpus: val holds out utterances, not speakers
    test_corpora: list[str] = field(default_factory=list)  # split=corpus: the held-out corpora


def speakers_of(utterances: Sequence[Utterance], indices) -> set[str]:
    return {utterances[i].speaker for i in indices}


def check_disjoint(utterances: Sequence[Utterance], fold: Fold) -> None:
    """Fail when a speaker is in more than one of train, val and test (the guard every run passes)."""
    if not fold.speaker_independent:
        return
    train, val, test = (speakers_of(utterances, ix) for ix in (fold.train, fold.val, fold.test))
    pairs = [(train, test, "train and test"), (val, test, "val and test")]
    if not fold.val_from_train_speakers:
        pairs.append((train, val, "train and val"))
    for a, b, names in pairs:
        shared = sorted(a & b)
        if shared:
            raise ValueError(
                f"fold {fold.name}: speakers {shared} are in both {names}; results would be inflated. "
                "Use a speaker-independent split (split=holdout|loso|kfold), or split=random to accept it knowingly."
            )


def check_duplicates(digests: Sequence[str], fold: Fold, utterances: Sequence[Utterance]) -> None:
    """Fail when copies of one recording (identical decoded audio under two names, ``digests`` per
    utterance) fall on both sides of the split: the test would include what training heard."""
    train = {digests[i]: i for i in fold.train}
    held_out = {digests[i]: i for i in list(fold.val) + list(fold.test)}
    shared = sorted(set(train) & set(held_out))
    if shared:
        pairs = [(utterances[train[d]].path, utterances[held_out[d]].path) for d in shared[:3]]
        raise ValueError(f"fold {fold.name}: {len(shared)} recordings are in training and in validation/test under "
                         f"different names, e.g. {pairs}; remove the copies (python -m ser.inspect lists them)")


def _pick(pool: list[str], spec, rng, what: str) -> list[str]:
    """Speakers from a list (kept as given) or a fraction of ``pool`` (at least one; ``val`` may be 0: none)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if what == "val" and spec == 0:
            return []  # no validation: every remaining speaker trains (test the last or averaged weights)
        if not 0 < spec < 1:
            raise ValueError(f"split.{what}: a fraction must lie in (0, 1), got {spec}")
        k = max(1, int(round(spec * len(pool))))
        return sorted(rng.permutation(pool)[:k].tolist())
    chosen = [str(s) for s in spec]
    missing = sorted(set(chosen) - set(pool))
    if missing:
        raise ValueError(f"split.{what}: speakers {missing} are not in the corpus; available: {pool}")
    return chosen


def make_fold(utterances: Sequence[Utterance], name: str, test: list[str], val_spec, rng) -> Fold:
    """A fold with ``test`` speakers held out and validation speakers drawn from the rest.

    With a single training speaker left (a two-speaker corpus such as TESS), validation holds out
    15 % of that speaker's utterances instead, and says so.
    """
    rest = sorted({u.speaker for u in utterances} - set(test))
    if not rest:
        raise ValueError(f"fold {name}: every speaker is a test speaker; nothing is left to train on")
    if len(rest) == 1:
        log.warning(
            "fold %s: only one training speaker (%s) against test speakers %s; this corpus has two speakers, so "
            "speaker-independent means training on one and testing on the other. Validation uses held-out "
            "utterances of the training speaker.", name, rest[0], test,
        )
        train_ix = [i for i, u in enumerate(utterances) if u.speaker in rest]
        share = 0 if val_spec == 0 else max(1, len(train_ix) * 15 // 100)
        val_ix = sorted(rng.permutation(train_ix)[:share].tolist())
        chosen = set(val_ix)
        train_ix = [i for i in train_ix if i not in chosen]
        test_ix = [i for i, u in enumerate(utterances) if u.speaker in test]
        return Fold(name, train_ix, val_ix, test_ix, list(test), val_from_train_speakers=True)
    val = _pick(rest, val_spec, rng, "val")
    if len(val) >= len(rest):
        raise ValueError(f"fold {name}: validation speakers {val} leave no training speakers")
    by = {"train": [], "val": [], "test": []}
    for i, u in enumerate(utterances):
        by["test" if u.speaker in test else "val" if u.speaker in val else "train"].append(i)
    fold = Fold(name, by["train"], by["val"], by["test"], list(test))
    check_disjoint(utterances, fold)
    return fold


def _select(folds: list[Fold], fold: int | None) -> list[Fold]:
    if fold is None:
        return folds
    if not 0 <= fold < len(folds):
        raise ValueError(f"split.fold={fold} is out of range; this split has folds 0..{len(folds) - 1}")
    return [folds[fold]]


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
        if len(speakers) < 2:
            raise ValueError(
                f"a speaker-independent split needs 2 speakers or more; this corpus has {speakers}. "
                "Use split=random to split utterances instead (accuracy will be inflated)."
            )
        rng = np.random.default_rng(self.seed)
        test = _pick(speakers, self.test, rng, "test")
        if len(test) == len(speakers) and len(speakers) == 2:
            test = test[:1]
        return [make_fold(utterances, "holdout", test, self.val, rng)]


class LOSOSplit:
    """Leave one speaker out: one fold per speaker, that speaker tested.

    Args:
        val: validation speakers per fold, a count-like fraction of the training speakers (default
            0.12: one speaker out of 8-9) or a list.
        fold: run only this fold (0-based); None runs all, so a multirun can spread folds.
        seed: picks validation speakers.
    """

    def __init__(self, val: float | Sequence[str] = 0.12, fold: int | None = None, seed: int = 0):
        self.val, self.fold, self.seed = val, fold, seed

    def folds(self, utterances: Sequence[Utterance]) -> list[Fold]:
        speakers = sorted({u.speaker for u in utterances})
        if len(speakers) < 2:
            raise ValueError(f"leave-one-speaker-out needs 2 speakers or more; this corpus has {speakers}")
        rng = np.random.default_rng(self.seed)
        return _select([make_fold(utterances, s, [s], self.val, rng) for s in speakers], self.fold)


class KFoldSplit:
    """Speaker-grouped k-fold: speakers are shuffled and dealt into k groups; each group is tested once.

    Args:
        k: number of folds (5), at most the number of speakers.
        val: validation speakers per fold (fraction of the training speakers, or a list).
        fold: run only this fold; None runs all.
        seed: shuffles speakers and picks validation speakers.
    """

    def __init__(self, k: int = 5, val: float | Sequence[str] = 0.15, fold: int | None = None, seed: int = 0):
        self.k, self.val, self.fold, self.seed = k, val, fold, seed

    def folds(self, utterances: Sequence[Utterance]) -> list[Fold]:
        speakers = sorted({u.speaker for u in utterances})
        if not 2 <= self.k <= len(speakers):
            raise ValueError(f"split.k={self.k} must lie in 2..{len(speakers)} (the number of speakers)")
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(speakers).tolist()
        groups = [sorted(order[i :: self.k]) for i in range(self.k)]
        return _select([make_fold(utterances, f"k{i}", g, self.val, rng) for i, g in enumerate(groups)], self.fold)


class PredefinedSplit:
    """A fixed partition: speaker lists, or a ``split`` column (train/val/test) from a manifest.

    Args:
        test: test speakers (e.g. EmoDB's common ``[12, 14, 15, 16]``); ignored when ``column`` is used.
        val: validation speakers from the rest, a list or a fraction (default 0.15).
        column: name of a per-utterance column holding train/val/test; used when the corpus has it.
        seed: picks validation speakers given as a fraction.
    """

    def __init__(self, test: Sequence[str] | None = None, val=0.15, column: str | None = "split", seed: int = 0):
        self.test, self.val, self.column, self.seed = test, val, column, seed

    def folds(self, utterances: Sequence[Utterance]) -> list[Fold]:
        if self.column and all(self.column in u.extras for u in utterances):
            by = {"train": [], "val": [], "test": []}
            for i, u in enumerate(utterances):
                part = str(u.extras[self.column]).strip().lower()
                if part not in by:
                    raise ValueError(f"{u.path}: split column {self.column!r} is {part!r}; expected train, val or test")
                by[part].append(i)
            fold = Fold("predefined", by["train"], by["val"], by["test"], sorted(speakers_of(utterances, by["test"])))
            check_disjoint(utterances, fold)
            return [fold]
        if not self.test:
            raise ValueError("split=predefined needs split.test=[speaker, ...] or a 'split' column in the manifest")
        speakers = sorted({u.speaker for u in utterances})
        test = _pick(speakers, list(self.test), None, "test")
        return [make_fold(utterances, "predefined", test, self.val, np.random.default_rng(self.seed))]


class RandomSplit:
    """Stratified random utterances, NOT speaker-independent: test speakers are heard in training,
    so accuracy is inflated. For comparison with papers that did this, never as a headline.

    Args:
        test: share of utterances tested (0.2).
        val: share of utterances for validation (0.1).
        seed: the draw.
    """

    def __init__(self, test: float = 0.2, val: float = 0.1, seed: int = 0):
        self.test, self.val, self.seed = test, val, seed

    def folds(self, utterances: Sequence[Utterance]) -> list[Fold]:
        log.warning(
            "split=random: speakers leak between train and test, so accuracy is INFLATED and not comparable "
            "to speaker-independent results. Use split=holdout, loso or kfold for real numbers."
        )
        rng = np.random.default_rng(self.seed)
        by = {"train": [], "val": [], "test": []}
        for label in sorted({u.label for u in utterances}):
            ix = rng.permutation([i for i, u in enumerate(utterances) if u.label == label]).tolist()
            n_test, n_val = round(self.test * len(ix)), round(self.val * len(ix))
            by["test"] += ix[:n_test]
            by["val"] += ix[n_test : n_test + n_val]
            by["train"] += ix[n_test + n_val :]
        parts = {k: sorted(v) for k, v in by.items()}
        return [Fold("random", parts["train"], parts["val"], parts["test"], [], speaker_independent=False)]


class CorpusSplit:
    """Cross-corpus: train on some corpora, test on another (``data=multi``, or a manifest whose
    ``corpus`` column says where each utterance comes from).

    With ``test`` named, one fold: every utterance of that corpus is tested and the others train.
    Without it, leave one corpus out: one fold per corpus, named after it. Validation speakers come
    from the training corpora only, drawn per training corpus (so each is represented), which makes
    validation UA the in-domain reference for the cross-corpus test UA.

    Args:
        test: the test corpus (a name in ``data.corpora``), or null for leave-one-corpus-out.
        val: share of each training corpus's speakers used for validation (at least one where the
            corpus has three speakers or more), 0 for none, or a list of (namespaced) speaker ids.
        fold: run only this fold of leave-one-corpus-out; None runs all.
        seed: picks the validation speakers.
    """

    def __init__(self, test: str | None = None, val: float | Sequence[str] = 0.15, fold: int | None = None,
                 seed: int = 0):
        self.test, self.val, self.fold, self.seed = test, val, fold, seed

    def folds(self, utterances: Sequence[Utterance]) -> list[Fold]:
        corpora = list(dict.fromkeys(corpus_of(u) for u in utterances))
        if len(corpora) < 2 or "" in corpora:
            raise ValueError("split=corpus needs several corpora: use data=multi "
                             "'data.corpora={a: <dir>, b: <dir>}' (this data has "
                             f"{[c for c in corpora if c] or 'one corpus'})")
        if self.test is not None:
            if str(self.test) not in corpora:
                raise ValueError(f"split.test={self.test}: not one of the corpora {corpora}")
            held_out = [str(self.test)]
        else:
            held_out = corpora
        # one generator per held-out corpus: its fold is the same whether run alone (split.test) or in a LOCO
        folds = [self._fold(utterances, c, np.random.default_rng([self.seed, corpora.index(c)])) for c in held_out]
        return folds if self.test is not None else _select(folds, self.fold)

    def _fold(self, utterances: Sequence[Utterance], test_corpus: str, rng) -> Fold:
        speakers = {}  # corpus -> its speakers, in order
        for u in utterances:
            speakers.setdefault(corpus_of(u), set()).add(u.speaker)
        if isinstance(self.val, (int, float)) and not isinstance(self.val, bool):
            val = []
            for corpus, pool in speakers.items():
                if corpus == test_corpus or self.val == 0:
                    continue
                if not 0 < self.val < 1:
                    raise ValueError(f"split.val: a fraction must lie in [0, 1), got {self.val}")
                k = max(1, int(round(self.val * len(pool)))) if len(pool) >= 3 else 0
                val += rng.permutation(sorted(pool))[:k].tolist()
        else:
            rest = sorted(set().union(*(p for c, p in speakers.items() if c != test_corpus)))
            val = _pick(rest, self.val, rng, "val")
        val = set(val)
        by = {"train": [], "val": [], "test": []}
        for i, u in enumerate(utterances):
            by["test" if corpus_of(u) == test_corpus else "val" if u.speaker in val else "train"].append(i)
        if not by["train"]:
            raise ValueError(f"fold {test_corpus}: no training utterances are left after validation speakers {sorted(val)}")
        fold = Fold(test_corpus, by["train"], by["val"], by["test"], sorted(speakers[test_corpus]),
                    test_corpora=[test_corpus])
        check_disjoint(utterances, fold)
        return fold
