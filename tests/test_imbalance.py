"""Imbalance knobs: class weights, focal loss, the balanced sampler, controlled subsampling."""

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from ser.build import build_datamodule
from ser.data.samplers import BalancedBatchSampler
from ser.models.loss import ClassificationLoss, class_weights


def test_inverse_weights_average_one_per_example():
    w = class_weights([60, 30, 10])
    torch.testing.assert_close(w, torch.tensor([1 / 60, 1 / 30, 1 / 10]) * 100 / 3)
    assert float((w * torch.tensor([60.0, 30, 10])).sum()) == pytest.approx(100)


def test_effective_number_weights_are_gentler_than_inverse():
    counts = [1000, 100, 10]
    inverse, effective = class_weights(counts), class_weights(counts, "effective", beta=0.99)
    assert effective[2] / effective[0] < inverse[2] / inverse[0]
    assert effective[2] > effective[1] > effective[0]


def test_missing_class_in_training_is_explained():
    with pytest.raises(ValueError, match="no training examples"):
        class_weights([5, 0, 3])


def test_focal_loss_reduces_to_cross_entropy_at_gamma_zero_and_downweights_easy():
    logits, labels = torch.tensor([[4.0, 0.0], [0.0, 0.5]]), torch.tensor([0, 1])
    ce = ClassificationLoss([1, 1])(logits, labels)
    torch.testing.assert_close(ce, F.cross_entropy(logits, labels))
    focal = ClassificationLoss([1, 1], focal_gamma=2.0)(logits, labels)
    assert focal < ce


def test_logit_adjustment_trains_on_logits_plus_tau_log_prior():
    logits, labels = torch.tensor([[1.0, 0.0], [0.2, 0.4]]), torch.tensor([0, 1])
    counts = [90, 10]
    adjusted = ClassificationLoss(counts, logit_adjust=1.0)(logits, labels)
    prior = torch.tensor([0.9, 0.1]).log()
    torch.testing.assert_close(adjusted, F.cross_entropy(logits + prior, labels))
    assert ClassificationLoss(counts, logit_adjust=1.0)(logits, torch.tensor([1, 1])) > \
        ClassificationLoss(counts)(logits, torch.tensor([1, 1]))  # the rare class must win by more than its prior
    assert "log_prior" not in ClassificationLoss(counts, logit_adjust=1.0).state_dict()  # old checkpoints still load


def test_balanced_sampler_evens_out_classes():
    labels = [0] * 800 + [1] * 150 + [2] * 50
    sampler = BalancedBatchSampler(np.random.default_rng(0).integers(1000, 5000, 1000), labels, batch_size=32)
    drawn = Counter(labels[i] for batch in sampler for i in batch)
    assert sum(drawn.values()) == 1000
    for c in range(3):
        assert drawn[c] / 1000 == pytest.approx(1 / 3, abs=0.05)


def test_train_fraction_subsamples_only_training(make_cfg):
    cfg = make_cfg("debug=smoke", "fold.train_fraction={anger: 0.25}")
    dm = build_datamodule(cfg)
    dm.load()
    (fold,) = instantiate(cfg.split).folds(dm.corpus.utterances)
    before = Counter(dm.corpus.utterances[i].label for i in fold.train)
    dm.use_fold(fold)
    after = Counter(dm.corpus.utterances[i].label for i in dm.fold.train)
    assert after["anger"] == round(before["anger"] * 0.25) and after["sadness"] == before["sadness"]
    assert dm.fold.test == fold.test


def test_train_fraction_cuts_the_labels_training_sees_when_labels_are_noisy(make_cfg):
    # label noise on an imbalanced corpus: "keep 25 % of anger" keeps 25 % of what training sees labelled anger
    cfg = make_cfg("debug=smoke", "fold.train_fraction={anger: 0.25}", "inject.label_noise=0.3")
    dm = build_datamodule(cfg)
    dm.load()
    (fold,) = instantiate(cfg.split).folds(dm.corpus.utterances)
    before = Counter(dm.given_labels[i] for i in fold.train)
    dm.use_fold(fold)
    after = Counter(dm.given_labels[i] for i in dm.fold.train)
    assert before != Counter(dm.corpus.utterances[i].label for i in fold.train)  # some labels were replaced
    assert after["anger"] == round(before["anger"] * 0.25) and after["sadness"] == before["sadness"]
