"""Checkpoints written before the frontend was split (normalisation statistics in the frontend, filterbank
buffers in the state dict) still load and predict what they predicted then."""

from pathlib import Path

import pytest
import torch

from ser.checkpoint import load_model

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["old_cnn_logmel", "old_lstm_mfcc_deltas"])
def test_checkpoints_of_earlier_runs_load_and_predict_the_same(name):
    path = DATA / f"{name}.ckpt"
    expected = torch.load(path, weights_only=True)["expected"]  # probabilities recorded by the code that wrote it
    model = load_model(path)
    g = torch.Generator().manual_seed(expected["seed"])
    lengths = expected["lengths"]
    waves = 0.1 * torch.randn(len(lengths), int(lengths.max()), generator=g)
    waves = waves * (torch.arange(waves.shape[1])[None] < lengths[:, None])
    with torch.no_grad():
        probs = model(waves, lengths).softmax(-1)
    torch.testing.assert_close(probs, expected["probs"], atol=1e-5, rtol=1e-4)
    assert bool(model.normalizer.fitted) and model.normalizer.mode == "global"
