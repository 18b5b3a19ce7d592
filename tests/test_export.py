"""Exported models (TorchScript, ONNX) give the eager model's probabilities on raw waveforms."""

import json
from pathlib import Path

import pytest
import torch

from ser.checkpoint import load_model
from ser.export import example_batch, export, main
from ser.models.encoders.lstm import run_lstm, run_lstm_unpacked
from ser.train import train


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from tests.conftest import compose_config

    tmp = tmp_path_factory.mktemp("export")
    out = {}
    for model in ("cnn", "lstm", "cnn_lstm"):
        extra = ["module.input_stats=true"] if model == "cnn_lstm" else []  # the statistics path exports too
        cfg = compose_config(["debug=smoke", f"model={model}", *extra], tmp / model, tmp / "cache")
        train(cfg)
        out[model] = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    return out


def test_unpacked_lstm_equals_packed():
    lstm = torch.nn.LSTM(6, 5, num_layers=2, batch_first=True, bidirectional=True).eval()
    x, lengths = torch.randn(3, 6, 9), torch.tensor([9, 4, 6])
    x = x * (torch.arange(9)[None] < lengths[:, None])[:, None]
    with torch.no_grad():
        torch.testing.assert_close(run_lstm_unpacked(lstm, x, lengths), run_lstm(lstm, x, lengths))


@pytest.mark.parametrize("model", ["cnn", "lstm", "cnn_lstm"])
def test_torchscript_matches_eager(checkpoints, tmp_path, model):
    path = export(checkpoints[model], "torchscript", tmp_path / "m.pt")
    loaded = torch.jit.load(str(path))
    eager = load_model(checkpoints[model])
    waves, lengths = example_batch([20000, 7000], seed=5)
    probs = loaded(waves, lengths)  # outside no_grad, as a user would call it
    assert not probs.requires_grad and probs.numpy().shape == (2, len(eager.class_names))
    with torch.no_grad():
        torch.testing.assert_close(probs, eager(waves, lengths).softmax(-1), atol=1e-5, rtol=0)
    assert probs.sum(-1).tolist() == pytest.approx([1, 1], abs=1e-5)
    labels = json.loads((tmp_path / "m.pt.labels.json").read_text())
    assert labels["class_names"] == eager.class_names and labels["sample_rate"] == 16000


@pytest.mark.parametrize("model", ["cnn", "lstm"])
def test_onnx_matches_eager(checkpoints, tmp_path, model, capsys):
    ort = pytest.importorskip("onnxruntime")
    assert main([f"ckpt={checkpoints[model]}", "format=onnx", f"out={tmp_path / 'm.onnx'}"]) == 0
    assert str(tmp_path / "m.onnx") in capsys.readouterr().out
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    waves, lengths = example_batch([12000, 30000, 5000], seed=7)
    probs = session.run(None, {"waves": waves.numpy(), "lengths": lengths.numpy()})[0]
    with torch.no_grad():
        expected = load_model(checkpoints[model])(waves, lengths).softmax(-1).numpy()
    assert abs(probs - expected).max() < 1e-4
    # a TorchScript export beside it keeps its own labels file
    export(checkpoints[model], "torchscript", tmp_path / "m.pt")
    assert {p.name for p in tmp_path.glob("*.labels.json")} == {"m.onnx.labels.json", "m.pt.labels.json"}


def test_unknown_format_is_named(checkpoints):
    with pytest.raises(ValueError, match="format='tflite'"):
        export(checkpoints["cnn"], "tflite")
