"""Weight averaging over the last epochs (callbacks=average)."""

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ser import rundir
from ser.callbacks import AverageLastEpochs


def _epochs(callback, model, weights, max_epochs):
    saved = []
    save = lambda path, weights_only=None: saved.append(path)  # noqa: E731
    trainer = SimpleNamespace(max_epochs=max_epochs, current_epoch=0, save_checkpoint=save)
    for epoch, w in enumerate(weights):
        with torch.no_grad():
            model.weight.fill_(w)
        trainer.current_epoch = epoch
        callback.on_train_epoch_end(trainer, model)
    return trainer, saved


def test_the_last_epochs_are_averaged_and_the_average_is_saved(tmp_path):
    model = nn.BatchNorm1d(1)  # a weight and float buffers (averaged) and an integer counter (kept)
    callback = AverageLastEpochs(epochs=2, dirpath=str(tmp_path))
    trainer, saved = _epochs(callback, model, [1.0, 2.0, 4.0, 8.0], max_epochs=4)
    callback.on_train_end(trainer, model)
    assert model.weight.item() == pytest.approx(6.0)  # epochs 2 and 3 only
    assert saved == [tmp_path / "averaged.ckpt"]


def test_the_running_sum_survives_a_resume(tmp_path):
    first = AverageLastEpochs(epochs=3, dirpath=str(tmp_path))
    _epochs(first, nn.Linear(1, 1), [1.0, 2.0], max_epochs=3)  # killed after epoch 1
    resumed, model = AverageLastEpochs(epochs=3, dirpath=str(tmp_path)), nn.Linear(1, 1)
    resumed.load_state_dict(first.state_dict())
    trainer = SimpleNamespace(max_epochs=3, current_epoch=2, save_checkpoint=lambda path, weights_only=None: None)
    with torch.no_grad():
        model.weight.fill_(6.0)
    resumed.on_train_epoch_end(trainer, model)
    resumed.on_train_end(trainer, model)
    assert model.weight.item() == pytest.approx(3.0)


def test_bad_epoch_count_is_named():
    with pytest.raises(ValueError, match="callbacks.average.epochs"):
        AverageLastEpochs(epochs=0)


def test_a_run_without_validation_tests_and_diagnoses_the_averaged_checkpoint(tmp_path, caplog):
    from ser.train import train
    from tests.conftest import compose_config

    overrides = ["debug=smoke", "split.val=0", "callbacks=average", "callbacks.average.epochs=1"]
    cfg = compose_config(overrides, tmp_path / "run", tmp_path / "cache")
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    assert not [r for r in caplog.records if "weights_only" in r.getMessage()]  # averaged.ckpt is saved weights-only
    run = Path(cfg.paths.output_dir)
    assert "test/ua" in metrics and "val/ua" not in metrics  # nothing was validated, nothing selected
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["averaged.ckpt", "last.ckpt"]
    assert rundir.tested_checkpoint(run) == run / "checkpoints" / "averaged.ckpt"
