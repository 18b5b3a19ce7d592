"""Speaker-independent splits and their guard."""

import pytest

from ser.corpora.utterance import Utterance
from ser.data.splits import Fold, HoldoutSplit, KFoldSplit, LOSOSplit, PredefinedSplit, RandomSplit, check_disjoint


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


def test_loso_one_fold_per_speaker_val_never_test():
    utts = corpus(6, 4)
    folds = LOSOSplit(seed=0).folds(utts)
    assert [f.name for f in folds] == [f"s{i:02d}" for i in range(6)]
    for fold in folds:
        test = {utts[i].speaker for i in fold.test}
        val = {utts[i].speaker for i in fold.val}
        assert test == {fold.name} and val and not val & test
        assert len(fold.train) + len(fold.val) + len(fold.test) == len(utts)
    assert [f.name for f in LOSOSplit(fold=2).folds(utts)] == ["s02"]
    with pytest.raises(ValueError, match="split.fold"):
        LOSOSplit(fold=6).folds(utts)


def test_val_zero_trains_on_every_other_speaker():
    utts = corpus(6, 4)
    for fold in LOSOSplit(val=0).folds(utts):
        assert not fold.val and len(fold.train) == 5 * 4
    two = corpus(2, 10)  # the one-training-speaker case holds out no utterances either
    assert not HoldoutSplit(test=0.5, val=0).folds(two)[0].val
    with pytest.raises(ValueError, match="split.test"):
        HoldoutSplit(test=0).folds(utts)


def test_kfold_tests_every_speaker_once():
    utts = corpus(10, 2)
    folds = KFoldSplit(k=3, seed=1).folds(utts)
    tested = [utts[i].speaker for f in folds for i in f.test]
    assert sorted(set(tested)) == sorted({u.speaker for u in utts}) and len(tested) == len(utts)


def test_random_split_is_stratified_and_not_guarded(caplog):
    utts = corpus(3, 20)
    (fold,) = RandomSplit(test=0.2, val=0.1, seed=0).folds(utts)
    assert not fold.speaker_independent and "INFLATED" in caplog.text
    assert sorted(utts[i].label for i in fold.test).count("anger") == 6
    check_disjoint(utts, fold)  # does not raise: random is allowed to leak, knowingly


def test_predefined_by_speaker_list():
    utts = corpus(6, 2)
    (fold,) = PredefinedSplit(test=["s04", "s05"], val=["s00"]).folds(utts)
    assert {utts[i].speaker for i in fold.test} == {"s04", "s05"}
    assert {utts[i].speaker for i in fold.val} == {"s00"}
