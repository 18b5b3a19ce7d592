"""Every experiment preset composes and runs end to end, shrunk to the smoke corpus and one short epoch."""

import json
from pathlib import Path

import pytest

from ser.checkpoint import load_model
from ser.train import train
from tests.conftest import compose_config

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs(name, tmp_path, cache_dir):
    if "pretrained" in name:
        pytest.importorskip("resemblyzer")
    # debug=smoke comes after experiment in the defaults: the tiny synthetic corpus replaces the preset's data
    cfg = compose_config([f"experiment={name}", "debug=smoke", "trainer.max_epochs=1"], tmp_path, cache_dir)
    if "average" in cfg.callbacks:
        cfg.callbacks.average.epochs = 1
    metrics = train(cfg)
    assert 0 <= metrics["test/ua"] <= 1
    if cfg.split._target_.endswith("LOSOSplit"):
        assert len(json.loads((tmp_path / "cv_summary.json").read_text())["folds"]) == cfg.data.corpus.num_speakers
    ckpt = next(tmp_path.rglob("averaged.ckpt"), None) or next(tmp_path.rglob("last.ckpt"))
    model = load_model(ckpt)
    fitted = [m for m in model.modules() if hasattr(m, "fitted")]
    assert fitted and all(bool(m.fitted) for m in fitted)  # every normalisation got its statistics


MODELS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "model").glob("*.yaml"))


@pytest.mark.parametrize("model", MODELS)
def test_the_pretrained_recipe_takes_every_downstream(model, tmp_path, cache_dir):
    from ser.build import build_module

    pytest.importorskip("resemblyzer")
    cfg = compose_config(["experiment=pretrained", f"model={model}"], tmp_path, cache_dir)
    module = build_module(cfg, ["a", "b", "c"], [1, 1, 1])
    assert module.frontend.out_features == 512  # GE2E layers 2 and 3, stacked
