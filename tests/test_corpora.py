"""Every corpus adapter against a tiny tree with that corpus's real naming, made in the test.

Each tree holds a 48 kHz stereo file, a FLAC saved as .wav, an empty file, a file with an
unknown label and a hidden file; the real EmoDB is checked too when it is present."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra.utils import instantiate

from ser.audio import AudioError
from ser.build import build_corpus, build_datamodule
from tests.conftest import EMODB

IEMOCAP_EVAL = """% header
[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
[8.0 - 9.5]\tSes01F_impro01_M001\texc\t[3.0, 3.0, 3.0]
[9.0 - 10.5]\tSes01F_impro01_F002\tang\t[3.0, 3.0, 3.0]
[11.0 - 12.5]\tSes01F_impro01_M003\tsad\t[3.0, 3.0, 3.0]
[13.0 - 14.5]\tSes01F_impro01_F004\tfru\t[3.0, 3.0, 3.0]
"""

# corpus -> (good files: name -> label, the stereo 48k file, the FLAC-as-wav file, empty file, unknown-label file)
TREES = {
    "emodb": (
        {"wav/03a01Wa.wav": "anger", "wav/08a02Tb.wav": "sadness",
         "wav/09b01Fa.wav": "happiness", "wav/10a04Nc.wav": "neutral"},
        "wav/08a02Tb.wav", "wav/09b01Fa.wav", "wav/11a01La.wav", "wav/12a01Xa.wav",
    ),
    "ravdess": (
        {"Actor_01/03-01-05-01-02-01-01.wav": "anger", "Actor_02/03-01-04-02-01-01-02.wav": "sadness",
         "Actor_03/01-01-02-01-01-02-03.wav": "calm", "Actor_04/03-01-01-01-01-01-04.wav": "neutral"},
        "Actor_02/03-01-04-02-01-01-02.wav", "Actor_03/01-01-02-01-01-02-03.wav",
        "Actor_05/03-01-03-01-01-01-05.wav", "Actor_06/03-01-09-01-01-01-06.wav",
    ),
    "crema_d": (
        {"AudioWAV/1001_DFA_ANG_XX.wav": "anger", "AudioWAV/1002_IEO_SAD_HI.wav": "sadness",
         "AudioWAV/1003_TIE_HAP_LO.wav": "happiness", "AudioWAV/1004_IWW_NEU_XX.wav": "neutral"},
        "AudioWAV/1002_IEO_SAD_HI.wav", "AudioWAV/1003_TIE_HAP_LO.wav",
        "AudioWAV/1005_DFA_FEA_XX.wav", "AudioWAV/1006_DFA_XYZ_XX.wav",
    ),
    "tess": (
        {"OAF_angry/OAF_back_angry.wav": "anger", "YAF_pleasant_surprise/YAF_dog_ps.wav": "surprise",
         "YAF_sad/YAF_dog_sad.wav": "sadness", "OAF_Fear/OAF_bath_Fear.wav": "fear",
         "OAF_neutral/OA_bite_neutral.wav": "neutral"},  # the published corpus's naming slip: speaker from the folder
        "YAF_pleasant_surprise/YAF_dog_ps.wav", "YAF_sad/YAF_dog_sad.wav",
        "OAF_happy/OAF_back_happy.wav", "OAF_x/OAF_back_jealous.wav",
    ),
    "savee": (
        {"DC_a01.wav": "anger", "AudioData/JE/sa02.wav": "sadness", "JK_h03.wav": "happiness", "KL_su04.wav": "surprise"},
        "AudioData/JE/sa02.wav", "JK_h03.wav", "DC_n05.wav", "DC_x01.wav",
    ),
    "iemocap": (
        {"Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav": "neutral",
         "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav": "happiness",
         "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F002.wav": "anger",
         "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M003.wav": "sadness"},
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav",
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F002.wav",
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M005.wav",
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F009.wav",
    ),
}


def tone(rate, channels=1, seconds=0.5, f0=220.0):
    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * f0 * t)
    return np.stack([x] * channels, 1) if channels > 1 else x


def build(root, corpus):
    good, stereo, flac, empty, unknown = TREES[corpus]
    for name in list(good) + [unknown]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == stereo:
            sf.write(path, tone(48000, channels=2), 48000)
        elif name == flac:
            sf.write(path, tone(22050), 22050, format="FLAC")
        else:
            sf.write(path, tone(16000), 16000)
    (root / empty).parent.mkdir(parents=True, exist_ok=True)
    (root / empty).write_bytes(b"")
    (root / empty).with_name("._" + (root / empty).name).write_bytes(b"macOS junk")  # hidden: ignored
    if corpus == "iemocap":
        evaluation = root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
        evaluation.parent.mkdir(parents=True)
        evaluation.write_text(IEMOCAP_EVAL + "[1 - 2]\tSes01F_impro01_M005\tneu\t[1, 1, 1]\n")
    if corpus == "ravdess":  # the song channel is left out by default, not reported
        sf.write(root / "Actor_01/03-02-05-01-02-01-01.wav", tone(16000), 16000)
    return good, stereo, empty, unknown


@pytest.mark.parametrize("corpus", sorted(TREES))
def test_adapter_reads_a_messy_tree(make_cfg, tmp_path, corpus):
    root = tmp_path / corpus
    good, stereo, empty, unknown = build(root, corpus)
    dm = build_datamodule(make_cfg(f"data={corpus}", f"data.root={root}", "data.on_bad_file=skip"))
    dm.load()
    assert sorted((u.path, u.label) for u in dm.corpus.utterances) == sorted((str(root / n), lab) for n, lab in good.items())
    skipped = {s["path"]: s["reason"] for s in dm.corpus.skipped}
    assert set(skipped) == {str(root / empty), str(root / unknown)}
    assert "empty" in skipped[str(root / empty)]
    assert "unknown" in skipped[str(root / unknown)] or "no label" in skipped[str(root / unknown)]
    waves = {u.path: dm.corpus.audio(i) for i, u in enumerate(dm.corpus.utterances)}
    assert waves[str(root / stereo)].ndim == 1 and abs(waves[str(root / stereo)].numel() - 8000) <= 1
    assert all(abs(w.numel() - 8000) <= 1 for w in waves.values())
    if corpus == "tess":
        assert {u.speaker for u in dm.corpus.utterances if "OA_bite" in u.path} == {"OAF"}


@pytest.mark.parametrize("corpus", sorted(TREES))
def test_bad_file_stops_the_run_by_default_naming_it(make_cfg, tmp_path, corpus):
    root = tmp_path / corpus
    build(root, corpus)
    dm = build_datamodule(make_cfg(f"data={corpus}", f"data.root={root}"))
    with pytest.raises(AudioError, match="on_bad_file=skip") as err:
        dm.load()
    assert str(root) in str(err.value)


def test_adapter_metadata(make_cfg, tmp_path):
    root = tmp_path / "ravdess"
    build(root, "ravdess")
    dm = build_datamodule(make_cfg("data=ravdess", f"data.root={root}", "data.on_bad_file=skip"))
    dm.load()
    by_path = {u.path.rsplit("/", 1)[-1]: u for u in dm.corpus.utterances}
    u = by_path["03-01-04-02-01-01-02.wav"]
    assert u.speaker == "02" and u.extras["gender"] == "f" and u.extras["intensity"] == "strong"


def test_labels_select_and_merge(make_cfg, tmp_path):
    root = tmp_path / "ravdess"
    build(root, "ravdess")
    cfg = make_cfg("data=ravdess", f"data.root={root}", "data.on_bad_file=skip", "data.merge={calm: neutral}",
                   "data.labels=[neutral,anger]")
    dm = build_datamodule(cfg)
    dm.load()
    assert dm.corpus.class_names == ["neutral", "anger"]
    assert sorted(u.label for u in dm.corpus.utterances) == ["anger", "neutral", "neutral"]


def test_corpus_loads_apart_from_folds(make_cfg, tmp_path):
    """The corpus (ser.data.decoded, the data config) loads with no fold and is what the data module serves folds
    of; its label noise (a fold-side choice) leaves the corpus's own labels alone."""
    from ser.data.decoded import DecodedCorpus

    root = tmp_path / "ravdess"
    build(root, "ravdess")
    cfg = make_cfg("data=ravdess", f"data.root={root}", "data.on_bad_file=skip", "inject.label_noise=0.9")
    dm = build_datamodule(cfg)
    dm.load()
    assert isinstance(dm.corpus, DecodedCorpus) and isinstance(build_corpus(cfg), DecodedCorpus)
    assert dm.corpus.label == "ravdess" and dm.corpus.speakers == sorted({u.speaker for u in dm.corpus.utterances})
    assert any(g != u.label for g, u in zip(dm.given_labels, dm.corpus.utterances))  # training sees replaced labels
    alone = DecodedCorpus(instantiate(cfg.data.corpus), root=str(root), on_bad_file="skip")
    alone.load()
    assert [u.path for u in alone.utterances] == [u.path for u in dm.corpus.utterances]
    assert [u.label for u in alone.utterances] == [u.label for u in dm.corpus.utterances]
    assert all(torch.equal(alone.audio(i), dm.corpus.audio(i)) for i in range(len(alone)))
    with pytest.raises(ValueError, match="on_bad_file"):
        DecodedCorpus(instantiate(cfg.data.corpus), root=str(root), on_bad_file="ignore")


def test_manifest_with_relative_paths_and_split_column(make_cfg, tmp_path):
    (tmp_path / "audio").mkdir()
    rows = ["path,label,speaker,split"]
    for i, (label, speaker, part) in enumerate(
        [("angry", "a", "train"), ("sad", "a", "train"), ("afraid", "a", "train"), ("angry", "b", "val"),
         ("sad", "b", "val"), ("angry", "c", "test"), ("sad", "c", "test")]
    ):
        sf.write(tmp_path / "audio" / f"{i}.wav", tone(16000), 16000)
        rows.append(f"audio/{i}.wav,{label},{speaker},{part}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    dm = build_datamodule(make_cfg("data=manifest", f"data.root={tmp_path}"))
    dm.load()
    # a manifest's own spellings (angry, sad, afraid) become the canonical names other corpora use
    assert dm.corpus.class_names == ["sadness", "anger", "fear"] and len(dm.corpus.utterances) == 7
    (fold,) = instantiate(make_cfg("split=predefined").split).folds(dm.corpus.utterances)
    assert [dm.corpus.utterances[i].speaker for i in fold.test] == ["c", "c"]


def test_missing_root_says_what_to_do(make_cfg, tmp_path):
    dm = build_datamodule(make_cfg("data=emodb", f"data.root={tmp_path / 'nowhere'}"))
    with pytest.raises(FileNotFoundError, match="data.root"):
        dm.load()


def test_decoded_audio_is_cached_on_disk(make_cfg, tmp_path, monkeypatch):
    import ser.audio
    from ser.data.store import Stored

    root = tmp_path / "emodb"
    build(root, "emodb")
    cfg = make_cfg("data=emodb", f"data.root={root}", "data.on_bad_file=skip", "data.resident_mb=0")
    first = build_datamodule(cfg)
    first.load()
    assert len(first.corpus) >= 4 and isinstance(first.corpus.stored(0), Stored)  # a handle, read by corpus.audio(i)
    assert list(Path(cfg.data.cache_dir).glob("store/audio-*/*.jsonl"))  # the audio store
    decoded, real = [], ser.audio.load_audio
    monkeypatch.setattr(ser.audio, "load_audio", lambda path, *a, **k: (decoded.append(str(path)), real(path, *a, **k))[1])
    dm = build_datamodule(cfg)
    dm.load()  # a second load reads the store instead of decoding (only the bad files are tried again)
    assert not set(decoded) & {u.path for u in dm.corpus.utterances} and len(dm.corpus.skipped) == len(first.corpus.skipped)
    assert dm.corpus.digests == first.corpus.digests
    assert all(torch.equal(dm.corpus.audio(i), first.corpus.audio(i)) for i in range(len(dm.corpus)))


@pytest.mark.skipif(not (EMODB / "wav").is_dir(), reason="EmoDB not found (set SER_EMODB)")
def test_real_emodb_inspect(capsys, tmp_path):
    from ser.inspect import main

    summary = main(["data=emodb", f"data.root={EMODB}", f"paths.cache_dir={tmp_path}"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(summary))
    assert summary["utterances"] == 535 and summary["speakers"] == 10 and len(summary["labels"]) == 7
    assert summary["labels"] == {"neutral": 79, "happiness": 71, "sadness": 62, "anger": 127, "fear": 69,
                                 "disgust": 46, "boredom": 81}
