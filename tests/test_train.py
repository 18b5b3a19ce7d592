"""End to end through ``ser.train.train`` on the composed config, shrunk to seconds."""

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ser.train import train

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["neutral", "happiness", "sadness", "anger", "fear", "disgust", "boredom"]


def test_smoke_run_writes_metrics_checkpoints_and_tensorboard(make_cfg):
    cfg = make_cfg("debug=smoke", "model=cnn")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == metrics
    for key in ["test/ua", "test/wa", "test/macro_f1"] + [f"test/recall/{c}" for c in CLASSES]:
        assert 0.0 <= saved[key] <= 1.0, key
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert any(p.name.startswith("best-") for p in (run / "checkpoints").iterdir())
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0}).Reload()
    scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
    assert {f"val/recall/{c}" for c in CLASSES} <= scalars
    assert {"val/ua", "val/wa", "val/macro_f1", "train/loss", "hp/test_ua"} <= scalars
    assert "val/confusion_matrix" in images and "test/confusion_matrix" in images


@pytest.mark.slow
def test_short_run_beats_chance_clearly(make_cfg):
    """An easier, small corpus and ten short epochs on unseen speakers: UA far above 1/7 (0.52 measured)."""
    cfg = make_cfg(
        "model=lstm",
        "data.corpus.num_speakers=10",
        "data.corpus.utterances_per_speaker=21",
        "data.corpus.duration_s=[1.0,1.5]",
        "data.corpus.difficulty=0.3",
        "split.test=[s01,s02]",
        "split.val=[s03]",
        "trainer.max_epochs=10",
        "optimizer.lr=3e-3",
    )
    metrics = train(cfg)
    assert metrics["test/ua"] > 0.4, metrics


def test_prosody_features_with_noise_augmentation_train(make_cfg):
    metrics = train(make_cfg("debug=smoke", "features=logmel_prosody", "augment=full", "loader.sampler=balanced",
                             "loss=focal"))
    assert 0.0 <= metrics["test/ua"] <= 1.0


def test_per_speaker_normalisation_trains_with_a_table_of_every_speaker(make_cfg):
    from ser.checkpoint import load_model

    cfg = make_cfg("debug=smoke", "model=cnn", "features.normalize=speaker")
    metrics = train(cfg)
    assert 0.0 <= metrics["test/ua"] <= 1.0
    model = load_model(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    n_speakers = cfg.data.corpus.num_speakers
    assert model.normalizer.speaker_mean.shape == (n_speakers, model.frontend.out_features)
    assert model.normalizer.speaker_std.min() > 0
