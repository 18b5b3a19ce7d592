"""Speaker-independent splits and their guard."""

import pytest

from ser.corpora.utterance import Utterance
from ser.data.splits import Fold, HoldoutSplit, check_disjoint


def corpus(speakers=10, per=5):
    labels = ("sadness", "anger")
    return [Utterance(f"{s}_{i}.wav", labels[i % 2], f"s{s:02d}") for s in range(speakers) for i in range(per)]


def test_holdout_speakers_are_disjoint_and_cover_everything():
    utts = corpus()
    (fold,) = HoldoutSplit(test=0.2, val=0.2, seed=1).folds(utts)
    sets = [{utts[i].speaker for i in ix} for ix in (fold.train, fold.val, fold.test)]
    assert len(sets[2]) == 2 and len(sets[1]) == 2 and len(sets[0]) == 6
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sorted(fold.train + fold.val + fold.test) == list(range(len(utts)))


def test_holdout_by_speaker_list():
    utts = corpus()
    (fold,) = HoldoutSplit(test=["s03"], val=["s04"]).folds(utts)
    assert {utts[i].speaker for i in fold.test} == {"s03"}
    with pytest.raises(ValueError, match="s99"):
        HoldoutSplit(test=["s99"]).folds(utts)


def test_guard_rejects_shared_speakers():
    utts = corpus(3, 2)
    with pytest.raises(ValueError, match="both train and test"):
        check_disjoint(utts, Fold("bad", train=[0, 2], val=[4], test=[1]))


def test_one_speaker_is_explained():
    with pytest.raises(ValueError, match="2 speakers"):
        HoldoutSplit().folds(corpus(1))


def test_two_speakers_train_on_one_test_on_the_other(caplog):
    utts = corpus(2, 20)
    (fold,) = HoldoutSplit(seed=0).folds(utts)
    train, val, test = ({utts[i].speaker for i in ix} for ix in (fold.train, fold.val, fold.test))
    assert len(test) == 1 and train == val and not (train & test)
    assert not set(fold.train) & set(fold.val)
    assert "two speakers" in caplog.text
