"""Training through noisy labels. fold.exclude: the utterances a file names leave training and validation
(never test), counted in the log; a file that names nothing of this corpus, or no file, is an error naming
fold.exclude. loss=gce: generalized cross-entropy, bounded per example."""

import csv

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from ser.build import build_datamodule
from ser.data.exclude import read_exclude
from ser.models.loss import ClassificationLoss


def _data(make_cfg, *overrides):
    cfg = make_cfg("debug=smoke", "data.corpus.num_speakers=6", *overrides)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.load()
    (fold,) = instantiate(cfg.split).folds(dm.corpus.utterances)
    return dm, fold


def test_a_suspect_list_leaves_training_and_validation_only(make_cfg, tmp_path, caplog):
    dm, fold = _data(make_cfg)
    named = fold.train[:5] + fold.val[:2] + fold.test[:3]  # test utterances are named too, and must stay
    listing = tmp_path / "suspect_labels.csv"
    with open(listing, "w", newline="") as f:  # the diagnosis's file: every judged utterance, flagged or not
        writer = csv.DictWriter(f, fieldnames=["path", "speaker", "given", "likely", "quality", "flagged"])
        writer.writeheader()
        for i in named:
            writer.writerow({"path": dm.corpus.utterances[i].path, "speaker": "s", "given": "a", "likely": "b",
                             "quality": 0.1, "flagged": True})
        writer.writerow({"path": dm.corpus.utterances[fold.train[-1]].path, "speaker": "s", "given": "a", "likely": "a",
                         "quality": 0.9, "flagged": False})
    with caplog.at_level("INFO"):
        excluded, same = _data(make_cfg, f"fold.exclude={listing}")
    assert "fold.exclude leaves 10 utterances out" in caplog.text
    excluded.use_fold(same)
    gone = set(fold.train[:5] + fold.val[:2])
    assert excluded.fold.train == [i for i in fold.train if i not in gone]  # the unflagged row stays
    assert excluded.fold.val == [i for i in fold.val if i not in gone]
    assert excluded.fold.test == fold.test  # what the run is scored on never changes


def test_plain_lists_and_bad_files_are_named(make_cfg, tmp_path):
    dm, fold = _data(make_cfg)
    plain = tmp_path / "drop.txt"
    plain.write_text("# one path per line\n" + "\n".join(dm.corpus.utterances[i].path for i in fold.train[:4]) + "\n")
    assert read_exclude(plain) == [dm.corpus.utterances[i].path for i in fold.train[:4]]
    excluded, same = _data(make_cfg, f"fold.exclude={plain}")
    excluded.use_fold(same)
    assert len(excluded.fold.train) == len(fold.train) - 4
    with pytest.raises(FileNotFoundError, match="fold.exclude="):
        _data(make_cfg, f"fold.exclude={tmp_path / 'missing.csv'}")
    other = tmp_path / "other.txt"
    other.write_text("/elsewhere/a.wav\n/elsewhere/b.wav\n")
    with pytest.raises(ValueError, match="none of its 2 paths"):
        _data(make_cfg, f"fold.exclude={other}")


def test_generalized_cross_entropy_bounds_what_a_wrong_label_costs(make_cfg):
    logits = torch.tensor([[8.0, 0.0, 0.0], [0.0, 0.3, 0.0]])
    wrong, right = torch.tensor([1, 1]), torch.tensor([0, 1])
    gce = ClassificationLoss([1, 1, 1], robust="gce", gce_q=0.7)
    ce = ClassificationLoss([1, 1, 1])
    # a confidently wrong label: cross-entropy grows without bound, GCE stays under 1/q
    assert ce(logits[:1], wrong[:1]) > 7 and gce(logits[:1], wrong[:1]) < 1 / 0.7
    p = logits.softmax(-1)[torch.arange(2), right]
    torch.testing.assert_close(gce(logits, right), ((1 - p.pow(0.7)) / 0.7).mean())
    # q -> 0 is cross-entropy
    torch.testing.assert_close(ClassificationLoss([1, 1, 1], robust="gce", gce_q=1e-4)(logits, right),
                               F.cross_entropy(logits, right), atol=1e-3, rtol=1e-3)
    # the config group composes (over the pretrained preset's label smoothing too) and builds the loss
    cfg = make_cfg("experiment=pretrained", "loss=gce")
    loss = instantiate(cfg.loss, class_counts=[1, 1, 1])
    assert loss.robust == "gce" and loss.label_smoothing == 0.1 and float(loss(logits, right)) > 0
    with pytest.raises(ValueError, match="loss.robust"):
        ClassificationLoss([1, 1], robust="mae")
