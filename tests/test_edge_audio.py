"""Audio as real corpora publish it: float files beyond full scale, copies under two names, folds
without a class. Each is reported, not silently accepted."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from ser.build import build_datamodule
from ser.data.splits import Fold
from ser.inspect import inspect_corpus


@pytest.fixture
def corpus(tmp_path):
    """Three speakers x two classes of tones; s1's first anger file is copied as s3's, and s2's first
    neutral file is a float WAV peaking at 2.2 (as two of TESS's files do)."""
    rng = np.random.default_rng(0)
    rows = ["path,label,speaker"]
    for s in ("s1", "s2", "s3"):
        for label, f0 in (("anger", 300.0), ("neutral", 150.0)):
            for k in range(2):
                name = f"{s}_{label}_{k}.wav"
                t = np.arange(8000) / 16000
                wave = 0.3 * np.sin(2 * np.pi * (f0 + 20 * rng.random()) * t)
                if (s, label, k) == ("s2", "neutral", 0):
                    sf.write(tmp_path / name, (wave / 0.3 * 2.2).astype(np.float32), 16000, subtype="FLOAT")
                elif (s, label, k) == ("s3", "anger", 0):
                    (tmp_path / name).write_bytes((tmp_path / "s1_anger_0.wav").read_bytes())
                else:
                    sf.write(tmp_path / name, wave, 16000)
                rows.append(f"{name},{label},{s}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_beyond_full_scale_and_duplicates_are_listed_and_warned(make_cfg, corpus, caplog):
    dm = build_datamodule(make_cfg("data=manifest", f"data.root={corpus}", "data.cache_dir=null"))
    with caplog.at_level(logging.WARNING):
        dm.load()
    assert dm.corpus.out_of_range == [str(corpus / "s2_neutral_0.wav")]
    assert dm.corpus.duplicates == [[str(corpus / "s1_anger_0.wav"), str(corpus / "s3_anger_0.wav")]]
    assert "beyond full scale" in caplog.text and "identical recordings" in caplog.text
    loud = next(i for i, u in enumerate(dm.corpus.utterances) if "s2_neutral_0" in u.path)
    assert float(dm.corpus.audio(loud).abs().max()) > 2
    summary = inspect_corpus(dm.corpus)
    assert summary["out_of_range"] == dm.corpus.out_of_range and summary["duplicates"] == dm.corpus.duplicates
    by_speaker = {s: [i for i, u in enumerate(dm.corpus.utterances) if u.speaker == s] for s in ("s1", "s2", "s3")}
    # s1 trains and s3 tests: the copied recording would be heard in training and tested
    with pytest.raises(ValueError, match=r"1 recordings are in training and in validation/test under different names"):
        dm.use_fold(Fold("leak", by_speaker["s1"], by_speaker["s2"], by_speaker["s3"]))


def test_a_fold_without_a_class_warns_with_its_name(make_cfg, corpus, caplog):
    dm = build_datamodule(make_cfg("data=manifest", f"data.root={corpus}", "data.cache_dir=null"))
    dm.load()
    test = [i for i, u in enumerate(dm.corpus.utterances) if u.speaker == "s2" and u.label == "neutral"]
    train = [i for i, u in enumerate(dm.corpus.utterances) if u.speaker == "s1"]
    with caplog.at_level(logging.WARNING):
        dm.use_fold(Fold("f7", train, [], test))
    assert "fold f7: the test set has no anger" in caplog.text
