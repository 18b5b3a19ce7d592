"""ser.stats: one definition of UA and the scores of a confusion matrix, and the paired tests."""

import itertools

import numpy as np
import pytest

from ser import stats


def test_ua_averages_the_classes_present_and_scores_agree_with_it():
    labels, preds = np.array([0, 0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 1, 0])
    assert stats.ua(labels, preds, 3) == pytest.approx(0.5)  # class 2 absent: not averaged in, not a recall of 0
    s = stats.scores(stats.confusion(labels, preds, 3))
    assert s["ua"] == stats.ua(labels, preds, 3) and s["wa"] == pytest.approx(3 / 6)
    assert s["recall"].tolist() == [0.5, 0.5, 0.0]  # an absent class reads 0 in the per-class columns
    assert np.isnan(stats.scores(np.zeros((2, 2), int))["ua"])


def _exact_signed_rank(d: np.ndarray) -> float:
    """The two-sided exact p by enumeration: zeros dropped, tied |d| share their mean rank."""
    d = d[d != 0]
    ranks = np.argsort(np.argsort(np.abs(d), kind="stable"), kind="stable") + 1.0
    for v in np.unique(np.abs(d)):
        ranks[np.abs(d) == v] = ranks[np.abs(d) == v].mean()
    w, mean = ranks[d > 0].sum(), ranks.sum() / 2
    null = np.array([ranks[np.array(s, bool)].sum() for s in itertools.product([0, 1], repeat=len(d))])
    return float(np.mean(np.abs(null - mean) >= abs(w - mean) - 1e-9))


def test_wilcoxon_is_exact_with_ties_and_zeros():
    for d in (np.array([0.1, 0.1, -0.1, 0.2, 0.0, 0.3]), np.round(np.random.default_rng(1).normal(0.02, 0.05, 12), 2)):
        assert stats.wilcoxon(d) == pytest.approx(_exact_signed_rank(d), abs=1e-12)
    assert stats.wilcoxon(np.zeros(5)) == 1.0
    assert 0 < stats.wilcoxon(np.random.default_rng(2).normal(0.05, 0.05, 30)) < 0.01  # the normal approximation


def test_sign_flip_one_and_two_sided():
    d = np.full(10, 0.1)
    assert stats.sign_flip_p(d, "greater") == pytest.approx(1 / 2**10)
    assert stats.sign_flip_p(d) == pytest.approx(2 / 2**10)
    assert stats.sign_flip_p(-d, "greater") == pytest.approx(1.0)
    assert np.isnan(stats.sign_flip_p(np.array([])))
    with pytest.raises(ValueError, match="alternative"):
        stats.sign_flip_p(d, "less")
