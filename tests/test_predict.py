"""Prediction from a checkpoint alone: one CSV row per file (or window), bad files reported."""

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.predict import main
from ser.train import train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.conftest import compose_config

    tmp = tmp_path_factory.mktemp("predict")
    cfg = compose_config(["debug=smoke", "model=cnn"], tmp / "run", tmp / "cache")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def rows(capsys):
    return list(csv.reader(io.StringIO(capsys.readouterr().out)))


def test_file_and_folder_with_a_bad_file(checkpoint, tmp_path, capsys):
    t = np.arange(48000 * 2) / 48000
    sf.write(tmp_path / "a.wav", np.stack([np.sin(2 * np.pi * 200 * t)] * 2, 1) * 0.3, 48000)  # stereo 48 kHz
    sf.write(tmp_path / "b.flac", np.sin(2 * np.pi * 150 * t[:16000]) * 0.3, 16000)
    (tmp_path / "c.wav").write_bytes(b"")
    assert main([f"ckpt={checkpoint}", f"input={tmp_path / 'a.wav'}"]) == 0
    header, *body = rows(capsys)
    assert header[:2] == ["path", "label"] and len(header) == 9 and len(body) == 1
    assert body[0][1] in header[2:] and sum(map(float, body[0][2:])) == pytest.approx(1, abs=1e-4)
    assert main([f"ckpt={checkpoint}", f"input={tmp_path}"]) == 1  # c.wav is empty
    captured = capsys.readouterr()
    assert len(list(csv.reader(io.StringIO(captured.out)))) == 3 and "c.wav" in captured.err


def test_windows_give_one_row_each(checkpoint, tmp_path, capsys):
    sf.write(tmp_path / "long.wav", np.random.default_rng(0).normal(size=16000 * 5) * 0.1, 16000)
    main([f"ckpt={checkpoint}", f"input={tmp_path / 'long.wav'}", "window_s=2", "hop_s=1"])
    _, *body = rows(capsys)
    assert [r[0].rsplit("@", 1)[1] for r in body] == ["0.00-2.00", "1.00-3.00", "2.00-4.00", "3.00-5.00"]


def test_the_last_partial_window_is_scored(checkpoint, tmp_path, capsys):
    sf.write(tmp_path / "odd.wav", np.random.default_rng(1).normal(size=int(16000 * 2.52)) * 0.1, 16000)
    main([f"ckpt={checkpoint}", f"input={tmp_path / 'odd.wav'}", "window_s=2", "hop_s=1"])
    _, *body = rows(capsys)
    assert [r[0].rsplit("@", 1)[1] for r in body] == ["0.00-2.00", "1.00-2.52"]
