"""Which utterances a fold trains, validates and tests on, and with which labels: a pure function of the
corpus, the split's fold and the policy (``serve``), with one way to keep a share of the training data
(``keep_share``). The data module serves its result; nothing here reads audio.

In order, for one fold: the split guards (no speaker on two sides, no recording twice), ``fold.exclude``
(utterances left out of training and validation), ``fold.train_fraction`` (a share of some classes' training
utterances: controlled imbalance), then the faults injected on purpose (``inject.train_share``, and the
replaced labels of ``inject.label_noise`` where training and validation see them), then ``subset`` (the
diagnosis's learning curve: a share of every class's training utterances, classes as training sees them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ser.corpora.labels import canonical
from ser.corpora.utterance import Utterance
from ser.data.inject import Injection, fold_rng, replace_labels
from ser.data.splits import Fold, check_disjoint, check_duplicates

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldPolicy:
    """The ``fold`` config: what each fold keeps of its training and validation utterances.

    Args:
        exclude: a file naming utterances left out of training and validation, never test (``ser.data.exclude``:
            ``ser.diagnose``'s ``suspect_labels.csv`` or one path per line); None: none.
        train_fraction: label -> share of that class's training utterances kept (``{anger: 0.2}``), seeded;
            validation and test sets are untouched.
        seed: the draws of ``train_fraction`` and of the diagnosis's ``subset``.
    """

    exclude: str | None = None
    train_fraction: Mapping[str, float] | None = None
    seed: int = 0

    def __post_init__(self):
        shares = {canonical(k): float(v) for k, v in (self.train_fraction or {}).items()}
        bad = {k: v for k, v in shares.items() if not 0.0 < v <= 1.0}
        if bad:
            raise ValueError(f"fold.train_fraction: {bad} must be shares in (0, 1]")
        object.__setattr__(self, "train_fraction", shares)


@dataclass(frozen=True)
class Served:
    """A fold as training sees it.

    ``fold``: its utterance indices after every rule; ``targets``: the class index each utterance trains or is
    scored with (a replaced label where training and validation see it); ``changed_labels``: the replaced
    labels of this fold's training and validation utterances (path, speaker, label, given); ``pool``: the
    fold's training utterances before ``subset``, which injected babble is mixed from.
    """

    fold: Fold
    targets: list[int]
    changed_labels: list[dict] = field(default_factory=list)
    pool: list[int] = field(default_factory=list)


def keep_share(indices: Sequence[int], labels: Sequence[str], share: float | Mapping[str, float],
               rng: np.random.Generator, order: Sequence[str] | None = None) -> list[int]:
    """``share`` of each class's ``indices`` (at least one per class), drawn from ``rng``; sorted.

    ``share``: one for every class, or per class (classes not named keep all). Classes are drawn in ``order``
    (default: the sorted labels present), each only when its share is below 1, so a seed gives the same
    utterances whatever else changes.

    >>> keep_share([0, 1, 2, 3], ["a", "a", "b", "b"], 0.5, np.random.default_rng(0))
    [0, 2]
    """
    keep = []
    for name in order if order is not None else sorted({labels[i] for i in indices}):
        ix = [i for i in indices if labels[i] == name]
        part = share.get(name, 1.0) if isinstance(share, Mapping) else share
        if part < 1.0:
            ix = rng.permutation(ix)[: max(1, round(part * len(ix)))].tolist()
        keep += ix
    return sorted(keep)


def serve(utterances: Sequence[Utterance], digests: Sequence[str], class_names: list[str], fold: Fold,
          policy: FoldPolicy, inject: Injection, given_labels: Sequence[str], excluded: set[int] = frozenset(),
          subset: float = 1.0) -> Served:
    """``fold`` of the corpus (its ``utterances``, their audio ``digests``) as training sees it (module docstring).

    ``given_labels``: every utterance's label as training would see it (``noisy_labels``); ``excluded``: the
    indices ``policy.exclude`` names (``ser.data.exclude.excluded_indices``).
    """
    check_disjoint(utterances, fold)
    check_duplicates(digests, fold, utterances)
    labels = [u.label for u in utterances]
    if excluded:
        fold = replace(fold, train=[i for i in fold.train if i not in excluded],
                       val=[i for i in fold.val if i not in excluded])
    if policy.train_fraction:  # by the labels training sees: "keep 20 % of anger" keeps 20 % of what is labelled anger
        fold = replace(fold, train=_fraction(fold.train, list(given_labels), class_names, policy))
    targets = [class_names.index(x) for x in labels]
    changed = []
    if inject.active:
        log.info("inject (fold %s): %s", fold.name, inject.describe())
    if inject.train_share < 1.0:
        fold = replace(fold, train=keep_share(fold.train, labels, inject.train_share, fold_rng(inject.seed, fold.name, 0)))
    if inject.label_noise > 0:
        changed = _replace_targets(fold, utterances, class_names, given_labels, targets)
    pool = list(fold.train)
    if subset < 1.0:  # by the labels training sees, so every class it trains on keeps an utterance
        seen = [class_names[t] for t in targets]
        fold = replace(fold, train=keep_share(fold.train, seen, subset, fold_rng(policy.seed, fold.name, 3)))
    _warn_missing(fold, labels, class_names)
    return Served(fold, targets, changed, pool)


def noisy_labels(labels: Sequence[str], class_names: list[str], inject: Injection) -> list[str]:
    """Every utterance's label as training would see it: ``inject.label_noise`` of them replaced, in one draw for
    the corpus, so that every fold's training sees the same wrong labels."""
    given = list(labels)
    if inject.label_noise > 0:
        new = replace_labels(given, list(range(len(given))), class_names, inject.label_noise, inject.label_noise_kind,
                             fold_rng(inject.seed, "labels", 1))
        for i, label in new.items():
            given[i] = label
    return given


def _fraction(train: list[int], labels: list[str], class_names: list[str], policy: FoldPolicy) -> list[int]:
    """``fold.train_fraction``: the listed classes' share of the training utterances (seeded), logged per class."""
    unknown = sorted(set(policy.train_fraction) - set(class_names))
    if unknown:
        raise ValueError(f"fold.train_fraction: {unknown} not among the classes {class_names}")
    kept = keep_share(train, labels, policy.train_fraction, np.random.default_rng(policy.seed), order=class_names)
    for name, share in policy.train_fraction.items():
        if share < 1.0:
            n = sum(labels[i] == name for i in kept)
            log.info("fold.train_fraction keeps %d %s training utterances (%.0f %%)", n, name, 100 * share)
    return kept


def _replace_targets(fold: Fold, utterances: Sequence[Utterance], class_names: list[str], given_labels: Sequence[str],
                     targets: list[int]) -> list[dict]:
    """``inject.label_noise``: the fold's training and validation utterances train on their given labels (``targets``
    changed in place); returns the replaced ones."""
    seen, changed = sorted(fold.train + fold.val), []
    for i in seen:
        u = utterances[i]
        if given_labels[i] != u.label:
            targets[i] = class_names.index(given_labels[i])
            changed.append({"path": u.path, "speaker": u.speaker, "label": u.label, "given": given_labels[i]})
    log.info("inject.label_noise: %d of %d training and validation labels replaced", len(changed), len(seen))
    return changed


def _warn_missing(fold: Fold, labels: list[str], class_names: list[str]) -> None:
    for part, indices in (("test", fold.test), ("validation", fold.val)):
        missing = [c for c in class_names if indices and c not in {labels[i] for i in indices}]
        if missing:
            log.warning("fold %s: the %s set has no %s; its UA averages the classes it has", fold.name, part,
                        ", ".join(missing))

