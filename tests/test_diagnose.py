"""The diagnosis: its numbers on hand-made predictions, its ranking, and the report of real runs."""

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from ser.diagnose import analysis as A
from ser.diagnose import diagnose
from ser.diagnose.causes import rank_causes
from ser.train import train

SECTIONS = ["## Likely causes, ranked", "## Confusions", "## Imbalance", "## Speakers", "## Noise", "## Duration",
            "## Calibration", "## Fitting", "## Features"]
FIGURES = ["confusion.png", "per_class.png", "imbalance.png", "speakers.png", "noise.png", "duration.png",
           "calibration.png", "fitting.png", "occlusion.png"]


def test_ua_ignores_absent_classes_and_pairs_are_sorted():
    labels = np.array([0, 0, 0, 0, 1, 1])
    preds = np.array([0, 0, 1, 1, 1, 0])
    assert A.ua(labels, preds, 3) == pytest.approx((0.5 + 0.5) / 2)  # class 2 absent: not averaged in
    pairs = A.confused_pairs(A.confusion(labels, preds, 3))
    assert pairs[0] == (0, 1, 2, 0.5) and pairs[1] == (1, 0, 1, 0.5) and len(pairs) == 2


def test_expected_calibration_error():
    labels = np.array([0, 1] * 50)
    sure = np.eye(2)[labels]  # always right with confidence 1
    assert A.calibration(sure, labels)["ece"] == pytest.approx(0.0)
    overconfident = np.tile([0.9, 0.1], (100, 1))  # always says class 0 at 0.9, right half the time
    result = A.calibration(overconfident, labels)
    assert result["ece"] == pytest.approx(0.4) and result["bins"][0]["n"] == 100


def test_imbalance_correlation_and_duration_buckets():
    assert A.pearson([0.5, 0.3, 0.2], [0.9, 0.5, 0.1]) > 0.9
    assert np.isnan(A.pearson([0.25] * 4, [0.1, 0.2, 0.3, 0.4]))  # equal shares: no correlation to speak of
    durations = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5])
    rows = A.ua_by_duration(durations, np.zeros(8, int), np.zeros(8, int), 2, n_buckets=4)
    assert sum(r["n"] for r in rows) == 8 and rows[-1]["high"] == np.inf


def _evidence(**kw):
    ev = {"class_names": ["anger", "disgust", "neutral"], "ua": 0.6, "train_share": [0.6, 0.1, 0.3],
          "recall": [0.95, 0.2, 0.65], "imbalance_r": 0.99, "pairs": [], "speaker_ua": {}, "noise_ua": {},
          "fitting": None, "ece": 0.02, "mean_confidence": 0.6, "accuracy": 0.6, "duration": [], "occlusion": {}}
    return ev | kw


def test_imbalance_ranks_first_with_its_numbers_and_advice():
    causes = rank_causes(_evidence(noise_ua={10.0: 0.55}))
    assert [c["cause"] for c in causes] == ["class imbalance", "sensitivity to noise"]
    assert "disgust recall 0.20 with 10 % of the training data" in causes[0]["evidence"]
    assert "loss.class_weighted=true" in causes[0]["try"]
    already = rank_causes(_evidence(settings={"class_weighted": True}))[0]
    assert "loss.class_weighted=true" not in already["try"]


def test_overfitting_and_speaker_spread_are_detected():
    fit = {"train_ua_eval": 0.98, "test_ua_folds": 0.5, "gap": 0.48, "epochs": 20, "best_epoch": 6, "val_ua": 0.5,
           "final_val_ua": 0.45, "val_loss_min_epoch": 5, "val_loss_rise": 0.7, "val_loss_rose": True}
    speakers = {"a": {"ua": 0.2, "n": 50}, "b": {"ua": 0.8, "n": 50}}
    causes = rank_causes(_evidence(imbalance_r=0.0, fitting=fit, speaker_ua=speakers))
    assert [c["cause"] for c in causes] == ["speaker variability", "overfitting"]
    assert "0.98 on the training speakers" in causes[1]["evidence"] and "epoch 5 of 20" in causes[1]["evidence"]


def test_fitting_is_judged_in_eval_mode_and_claims_only_real_trends():
    from ser.diagnose.fitting import fitting_evidence, loss_trend

    # The case: 5 epochs, the training curve (train mode) below validation, loss lowest at the end.
    curves = {"train/ua": [0.3, 0.45, 0.55, 0.6, 0.62], "val/ua": [0.4, 0.6, 0.7, 0.72, 0.71],
              "train/loss": [1.8, 1.5, 1.3, 1.2, 1.1], "val/loss": [1.7, 1.3, 1.1, 1.0, 0.98]}
    fit = fitting_evidence(curves)
    assert fit["best_epoch"] == 4 and fit["epochs"] == 5 and fit["val_loss_min_epoch"] == 5  # counted from 1
    assert not fit["val_loss_rose"] and "still falling at the last epoch (5)" in loss_trend(fit)
    fit |= {"train_ua_eval": 0.93, "test_ua_folds": 0.7, "gap": 0.23}
    assert "underfitting" not in [c["cause"] for c in rank_causes(_evidence(imbalance_r=0.0, fitting=fit))]
    risen = fitting_evidence(curves | {"val/loss": [1.7, 1.0, 1.05, 1.2, 1.4]})
    assert risen["val_loss_rose"] and "lowest at epoch 2 of 5 and rose 0.400" in loss_trend(risen)
    flat = fitting_evidence(curves | {"val/loss": [1.7, 1.0, 1.003, 1.001, 1.005]})
    assert "flat, not rising" in loss_trend(flat)
    weak = {"train_ua_eval": 0.4, "test_ua_folds": 0.35, "gap": 0.05, "epochs": 5}
    under = rank_causes(_evidence(imbalance_r=0.0, fitting=weak))
    assert under[0]["cause"] == "underfitting" and "0.40 on the training speakers themselves" in under[0]["evidence"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _check_report(report: Path, folds: int):
    text = report.read_text()
    for section in SECTIONS:
        assert section in text, section
    assert ("## Per fold" in text) == (folds > 1)
    for name in FIGURES:
        image = matplotlib.image.imread(report.parent / name)
        assert image.ndim == 3 and image.shape[0] > 100, name
    ev = json.loads((report.parent / "diagnosis.json").read_text())
    assert len(ev["folds"]) == folds and set(ev["noise_ua"]) == {"40.0", "20.0", "10.0", "5.0", "0.0"}
    assert 0 <= ev["ece"] <= 1 and ev["occlusion"] and ev["fitting"]["epochs"] >= 1
    fit = ev["fitting"]
    assert 1 <= fit["best_epoch"] <= fit["epochs"] and 0 <= fit["train_ua_eval"] <= 1  # 1-based; eval-mode training UA
    assert fit["gap"] == pytest.approx(fit["train_ua_eval"] - fit["test_ua_folds"])
    assert "fitting gap" in text and "How to read this" in text and "UA at stake" in text
    image = matplotlib.image.imread(report.parent / "fitting.png")
    assert image.shape[1] > 2 * image.shape[0]  # UA and loss side by side
    assert any((report.parent / "tensorboard").iterdir())
    return text, ev


def test_single_run_report_has_every_section(tmp_path, cache):
    from tests.conftest import compose_config

    cfg = compose_config(["debug=smoke", "model=cnn", "trainer.max_epochs=2"], tmp_path / "run", cache)
    metrics = train(cfg)
    report = diagnose(cfg.paths.output_dir)
    text, ev = _check_report(report, folds=1)
    # The report re-evaluates the checkpoint the run tested: the same UA.
    assert ev["ua"] == pytest.approx(metrics["test/ua"], abs=1e-6)
    assert ev["n"] == 14 and "s05" in ev["speaker_ua"]


def test_cross_validation_report_pools_folds(tmp_path, cache):
    from tests.conftest import compose_config

    cfg = compose_config(["debug=smoke", "model=cnn", "split=kfold", "split.k=2", "features=logmel_prosody"],
                         tmp_path / "run", cache)
    train(cfg)
    text, ev = _check_report(diagnose(cfg.paths.output_dir), folds=2)
    assert ev["n"] == 70  # every utterance is tested once over the two folds
    assert any(g.startswith("prosody") for g in ev["occlusion"])


def test_a_folder_that_is_not_a_run_is_named():
    with pytest.raises(FileNotFoundError, match="run="):
        diagnose("/nonexistent/run")
