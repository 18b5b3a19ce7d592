"""Temperature scaling: fitted on held-out speakers (validation, or inner folds when split.val=0), stored in the
tested checkpoint, read by predict, export and the diagnosis; it changes probabilities, never predictions."""

from pathlib import Path

import pytest
import torch

from ser.calibrate import fit_temperature, inner_folds
from ser.checkpoint import load_model
from ser.data.splits import Fold
from ser.train import train


def test_the_fitted_temperature_undoes_a_known_one():
    g = torch.Generator().manual_seed(0)
    z = 2 * torch.randn(4000, 5, generator=g)
    labels = torch.multinomial(z.softmax(-1), 1, generator=g).squeeze(1)  # labels drawn from softmax(z): calibrated
    assert fit_temperature(3 * z, labels) == pytest.approx(3.0, rel=0.08)  # over-confident logits are cooled
    assert fit_temperature(z / 2, labels) == pytest.approx(0.5, rel=0.08)  # under-confident ones sharpened


def test_inner_folds_hold_out_every_training_speaker_once():
    speakers = ["a", "a", "b", "b", "c", "d", "d", "e", "t"]
    fold = Fold("t", train=list(range(8)), val=[], test=[8], test_speakers=["t"])
    folds = inner_folds(fold, speakers, 2)
    assert len(folds) == 2
    assert sorted(sum((f.val for f in folds), [])) == fold.train
    for f in folds:
        assert not {speakers[i] for i in f.train} & {speakers[i] for i in f.val}
        assert 8 not in f.train + f.val
    assert inner_folds(Fold("x", train=[0, 1], val=[], test=[]), speakers, 2) == []  # one speaker: nothing to hold out


def test_a_run_stores_its_temperature_and_predict_and_export_use_it(make_cfg):
    cfg = make_cfg("debug=smoke", "trainer.max_epochs=2")
    metrics = train(cfg)
    t = metrics["calibration/temperature"]
    assert 0.05 <= t <= 20 and t != 1.0
    ckpt = next((Path(cfg.paths.output_dir) / "checkpoints").glob("best-*.ckpt"))
    model = load_model(ckpt)
    assert float(model.temperature) == pytest.approx(t)
    from ser.export import WaveformClassifier

    waves, lengths = torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000])
    with torch.no_grad():
        logits = model(waves, lengths)
        assert torch.allclose(WaveformClassifier(model).eval()(waves, lengths), (logits / t).softmax(-1), atol=1e-6)
    assert not torch.allclose(model.probabilities(logits), logits.softmax(-1))


def test_without_validation_speakers_inner_folds_fit_it_and_the_model_is_unchanged(make_cfg, caplog):
    base = ("debug=smoke", "data.corpus.num_speakers=5", "split=loso", "split.val=0", "split.fold=0",
            "trainer.max_epochs=2")
    with caplog.at_level("INFO"):
        calibrated = train(make_cfg(*base, "calibrate.inner_folds=2"))
    assert "fitted on 2 inner folds of the training speakers" in caplog.text
    plain = train(make_cfg(*base, "calibrate.temperature=false"))
    assert "calibration/temperature" in calibrated and "calibration/temperature" not in plain
    # the fold's own model trains exactly as uncalibrated: the same predictions
    assert calibrated["test/ua"] == plain["test/ua"] and calibrated["test/wa"] == plain["test/wa"]
    caplog.clear()
    with caplog.at_level("INFO"):
        train(make_cfg(*base))  # inner_folds=0: said, not silently skipped
    assert "probabilities stay uncalibrated" in caplog.text
