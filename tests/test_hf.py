"""data=hf: Hugging Face datasets (save_to_disk, audiofolder, parquet) as a corpus, read undecoded and decoded
by the project's own audio path, with column and label mapping and the same checks as every adapter."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

datasets = pytest.importorskip("datasets", reason="data=hf comes with the hf extra")

from ser.audio import AudioError, load_audio  # noqa: E402
from ser.build import build_datamodule  # noqa: E402

EMOTIONS = ["ang", "hap", "neu", "sad"]


def _wavs(folder, n=12, silent=()):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = np.arange(int(16000 * (0.5 + 0.1 * i))) / 16000
        wave = 0.2 * np.sin(2 * np.pi * (120 + 30 * (i % 4)) * t) + 0.01 * rng.standard_normal(len(t))
        wave = 0.0 * t if i in silent else wave
        path = folder / f"u{i:02d}.wav"
        sf.write(path, wave, 16000, subtype="PCM_16")
        rows.append({"file": path, "emotion": i % 4, "speaker_id": f"spk{i % 3}"})
    return rows


def _save_to_disk(tmp_path, rows):
    # audio as HF stores it (bytes and a name), cast to Audio without encoding (which would need torchcodec)
    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "emotion": datasets.ClassLabel(names=EMOTIONS), "speaker_id": datasets.Value("string")})
    data = {"audio": [{"bytes": r["file"].read_bytes(), "path": r["file"].name} for r in rows],
            "emotion": [r["emotion"] for r in rows], "speaker_id": [r["speaker_id"] for r in rows]}
    ds = datasets.Dataset.from_dict(data, features=features).cast_column("audio", datasets.Audio(decode=False))
    folder = tmp_path / "ds"
    datasets.DatasetDict({"train": ds}).save_to_disk(str(folder))
    return folder


COLUMNS = "data.columns={audio: audio, label: emotion, speaker: speaker_id}"


def test_a_saved_dataset_reads_like_its_files(make_cfg, tmp_path):
    rows = _wavs(tmp_path / "wav")
    folder = _save_to_disk(tmp_path, rows)
    dm = build_datamodule(make_cfg("data=hf", f"data.root={folder}", COLUMNS))
    dm.load()
    assert len(dm.corpus.utterances) == 12 and dm.corpus.speakers == ["spk0", "spk1", "spk2"]
    assert dm.corpus.class_names == ["neutral", "happiness", "sadness", "anger"]  # class ids named, then canonical
    assert dm.corpus.utterances[0].path == "hf://ds/train/0" and dm.corpus.utterances[0].label == "anger"
    for wave, r in zip((dm.corpus.audio(i) for i in range(len(dm.corpus))), rows):
        assert torch.equal(wave, load_audio(r["file"], 16000))  # the project's own decoding, bit for bit


def test_an_audiofolder_with_a_label_map_and_a_split_column(make_cfg, tmp_path):
    rows = _wavs(tmp_path / "af")
    with open(tmp_path / "af" / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "mood", "who", "part"])
        for r in rows:
            w.writerow([r["file"].name, ["angry", "glad", "calm", "down"][r["emotion"]], r["speaker_id"],
                        "test" if r["speaker_id"] == "spk2" else "train"])
    cfg = make_cfg("data=hf", f"data.root={tmp_path / 'af'}", "data.columns={label: mood, speaker: who, split: part}",
                   "data.label_map={glad: happiness, calm: neutral, down: sadness}")
    dm = build_datamodule(cfg)
    dm.load()
    assert sorted(dm.corpus.class_names) == ["anger", "happiness", "neutral", "sadness"]  # angry -> anger by spelling
    assert {u.extras["split"] for u in dm.corpus.utterances if u.speaker == "spk2"} == {"test"}
    assert all(u.path.endswith(".wav") for u in dm.corpus.utterances)  # real files keep their names


def test_bad_rows_and_columns_are_named(make_cfg, tmp_path):
    rows = _wavs(tmp_path / "wav", silent=(3,))
    folder = _save_to_disk(tmp_path, rows)
    with pytest.raises(AudioError, match=r"hf://ds/train/3.*silent"):
        build_datamodule(make_cfg("data=hf", f"data.root={folder}", COLUMNS)).load()
    dm = build_datamodule(make_cfg("data=hf", f"data.root={folder}", COLUMNS, "data.on_bad_file=skip"))
    dm.load()
    assert len(dm.corpus.utterances) == 11 and dm.corpus.skipped[0]["path"] == "hf://ds/train/3"
    with pytest.raises(ValueError, match="data.columns: label=mood"):
        build_datamodule(make_cfg("data=hf", f"data.root={folder}", "data.columns={label: mood}")).load()
    with pytest.raises(FileNotFoundError, match="data.root"):
        build_datamodule(make_cfg("data=hf", f"data.root={tmp_path / 'nowhere'}")).load()


def test_a_dataset_trains_through_train_py(make_cfg, tmp_path):
    from ser.train import train

    rows = _wavs(tmp_path / "wav", n=24)
    folder = _save_to_disk(tmp_path, rows)
    cfg = make_cfg("data=hf", f"data.root={folder}", COLUMNS, "split=loso", "trainer.max_epochs=1",
                   "loader.batch_size=8", "model=pool")
    metrics = train(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "cv_summary.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == ["spk0", "spk1", "spk2"]  # one per speaker of the dataset
    assert 0.0 <= metrics["test/ua"] <= 1.0


def test_bytes_that_are_not_audio_are_named(tmp_path):
    with pytest.raises(AudioError, match="hf://x/train/0: unreadable"):
        load_audio("hf://x/train/0", 16000, source=lambda: io.BytesIO(b"not audio at all"))


def test_a_streamed_dataset_reads_once_and_keeps_no_copy(make_cfg, tmp_path, monkeypatch):
    """data.corpus.streaming=true over parquet: the same waves as reading it in place, the audio read in one
    pass in row order, and a second run over a warm audio store reads no audio from the stream at all."""
    from ser.corpora.hf import HFCorpus

    rows = _wavs(tmp_path / "wav")
    folder = _save_to_disk(tmp_path, rows)
    datasets.load_from_disk(str(folder))["train"].to_parquet(str(tmp_path / "pq" / "train.parquet"))
    store = f"data.cache_dir={tmp_path / 'store'}"
    in_place = build_datamodule(make_cfg("data=hf", f"data.root={tmp_path / 'pq'}", COLUMNS, "data.cache_dir=null"))
    in_place.load()
    reads = []
    streamed_row = HFCorpus._streamed
    monkeypatch.setattr(HFCorpus, "_streamed", lambda self, split, i: reads.append(i) or streamed_row(self, split, i))
    dm = build_datamodule(make_cfg("data=hf", f"data.root={tmp_path / 'pq'}", COLUMNS, "data.corpus.streaming=true",
                              store))
    dm.load()
    assert dm.corpus.adapter.streaming and reads == list(range(12))
    assert dm.corpus.class_names == in_place.corpus.class_names
    assert [u.path for u in dm.corpus.utterances] == [f"hf://pq/train/{i}" for i in range(12)]
    assert all(torch.equal(dm.corpus.audio(i), in_place.corpus.audio(i)) for i in range(len(dm.corpus)))
    assert all(torch.equal(dm.corpus.audio(i), load_audio(r["file"], 16000)) for i, r in enumerate(rows))
    reads.clear()
    again = build_datamodule(make_cfg("data=hf", f"data.root={tmp_path / 'pq'}", COLUMNS, "data.corpus.streaming=true",
                                 store))
    again.load()
    assert reads == [] and all(torch.equal(again.corpus.audio(i), dm.corpus.audio(i)) for i in range(len(dm.corpus)))
