"""Pretrained upstreams: GE2E against resemblyzer, the frozen-feature cache, checkpoints, fine-tuning, SSL offline."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.build import build_datamodule
from ser.checkpoint import load_model
from ser.data.upstream_cache import Upstream
from ser.train import train
from tests.conftest import compose_config, save_tiny_ssl

pytest.importorskip("resemblyzer", reason="the GE2E weights come with the pretrained extra")
from ser.features.ge2e import GE2E  # noqa: E402


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A gliding, amplitude-modulated harmonic tone in a little noise, at a quiet level (16 kHz)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 150 * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))
    tone = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in (1, 2, 3))
    return (0.01 * tone * (1.2 + np.sin(2 * np.pi * 3 * t)) + 0.001 * rng.normal(size=t.size)).astype(np.float32)


def padded(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    waves = torch.zeros(len(lengths), max(lengths))
    for row, n in zip(waves, lengths):
        row[:n] = torch.from_numpy(speechlike(n / 16000, seed))
    return waves, torch.tensor(lengths)


def test_ge2e_matches_resemblyzer():
    """Tolerance 1e-4 on mel power (relative to its peak), hidden states and the speaker embedding; ~1e-6 measured."""
    pytest.importorskip("librosa")
    from resemblyzer import VoiceEncoder, audio

    wav = speechlike(2.5)
    encoder = VoiceEncoder("cpu", verbose=False)
    ref_mel = audio.wav_to_mel_spectrogram(audio.normalize_volume(wav, -30, increase_only=True))  # (T', 40)
    ours = GE2E(layers=[3])
    x, n = torch.from_numpy(wav)[None], torch.tensor([wav.size])
    mel = ours.mel(ours.level(x, n))[0].T.numpy()
    assert mel.shape == ref_mel.shape
    np.testing.assert_allclose(mel, ref_mel, atol=1e-4 * ref_mel.max())
    with torch.no_grad():
        ref_states = encoder.lstm(torch.from_numpy(ref_mel)[None])[0][0]  # (T', 256), the last layer
        states = ours.encode(x, n)[0][0].T
        torch.testing.assert_close(states, ref_states, atol=1e-4, rtol=0)
        # resemblyzer's embedding of a 160-frame partial: the last layer's state at its last frame
        ref_embedding = encoder(torch.from_numpy(ref_mel[None, :160]))[0]
        embedding = torch.relu(encoder.linear(states[159]))
        torch.testing.assert_close(embedding / embedding.norm(), ref_embedding, atol=1e-4, rtol=0)


def test_ge2e_layers_padding_and_options():
    frontend = GE2E()
    waves, lengths = padded([24000, 9000, 3000])
    feats, frames = frontend(waves, lengths)
    assert feats.shape == (3, 768, 151) and frames.tolist() == [151, 57, 19] and frontend.hop_length == 160
    assert list(frontend.row_groups()) == ["layer 1", "layer 2", "layer 3"]
    alone, _ = frontend(waves[1:2, :9000], lengths[1:2])
    torch.testing.assert_close(feats[1, :, :57], alone[0], atol=1e-5, rtol=0)
    assert feats[1, :, 57:].abs().max() == 0
    two = GE2E(layers=[3, 2])
    assert two.out_features == 512
    torch.testing.assert_close(two(waves, lengths)[0], torch.cat([feats[:, 512:], feats[:, 256:512]], 1))
    mixed = GE2E(layer_weights="learned")
    assert mixed.out_features == 256 and [n for n, p in mixed.named_parameters() if p.requires_grad] == ["mix.logits"]
    with pytest.raises(ValueError, match="features.layers"):
        GE2E(layers=[4])
    with pytest.raises(ValueError, match="data.sample_rate"):
        GE2E(sample_rate=8000)


def test_level_match_takes_every_utterance_to_the_same_level():
    waves = torch.stack([0.3 * torch.randn(16000), 0.001 * torch.randn(16000)])  # about -10 and -60 dBFS
    lengths = torch.tensor([16000, 16000])
    rms_db = lambda x: 10 * torch.log10(x.pow(2).mean(-1))  # noqa: E731
    raised, matched = GE2E().level(waves, lengths), GE2E(level_mode="match").level(waves, lengths)
    assert rms_db(raised)[0] == pytest.approx(float(rms_db(waves)[0]), abs=1e-3)  # resemblyzer's: loud stays loud
    assert rms_db(raised)[1] == pytest.approx(-30, abs=0.01)
    assert rms_db(matched).tolist() == pytest.approx([-30, -30], abs=0.01)
    assert GE2E(level_mode="match").cache_key() != GE2E().cache_key()
    with pytest.raises(ValueError, match="features.level_mode"):
        GE2E(level_mode="loud")


def test_frozen_weights_stay_out_of_checkpoints_and_must_match_on_load():
    frozen = GE2E()
    state = frozen.state_dict()
    assert set(state) == {"fingerprint"}  # 17 MB of LSTM weights are not copied into every checkpoint
    GE2E().load_state_dict(state)
    with pytest.raises(ValueError, match="fingerprint"):
        GE2E().load_state_dict({"fingerprint": torch.tensor(12345)})
    tuned = GE2E(freeze=False)
    assert any(k.startswith("net.lstm.2.") for k in tuned.state_dict())  # fine-tuned weights are the model's own


def test_missing_resemblyzer_says_which_extra_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[pretrained\]'"):
        GE2E()


@pytest.fixture(scope="module")
def ge2e_run(tmp_path_factory):
    """A smoke run with frozen GE2E under the pooling downstream, and its config."""
    tmp = tmp_path_factory.mktemp("ge2e")
    cfg = compose_config(["debug=smoke", "features=ge2e", "model=pool", "features.layers=[2,3]"], tmp / "run", tmp / "cache")
    return cfg, train(cfg)


def test_frozen_upstream_is_cached_once_and_reused(ge2e_run, caplog):
    cfg, metrics = ge2e_run
    assert 0 <= metrics["test/ua"] <= 1
    from ser.data.store import ArrayStore

    folders = [p.parent for p in (Path(cfg.paths.cache_dir) / "features" / "store").rglob("*.jsonl")]
    assert len(set(folders)) == 1  # one store: this upstream and its settings
    store = ArrayStore(folders[0])
    assert len(store) == 70  # one entry per utterance of the smoke corpus
    cached = store.get(next(iter(store.entries)))
    assert cached.dtype == np.float16 and cached.shape[0] == 512
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert "frontend.fingerprint" in state and not any(k.startswith("frontend.net.") for k in state)
    assert ckpt.stat().st_size < 5_000_000  # the pooling MLP and its optimiser state; GE2E alone would be 17 MB
    with caplog.at_level("INFO"):
        train(compose_config(["debug=smoke", "features=ge2e", "model=pool", "features.layers=[2,3]"],
                             Path(cfg.paths.output_dir).parent / "again", Path(cfg.paths.cache_dir)))
    assert "70 of 70 utterances from the cache" in caplog.text


def test_the_cache_is_invisible_to_the_model(ge2e_run):
    """A test batch read from the cache and the same clips as raw waves give the same probabilities."""
    from hydra.utils import instantiate

    cfg, _ = ge2e_run
    model = load_model(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    dm = build_datamodule(cfg)
    dm.load()
    dm.use_fold(instantiate(cfg.split).folds(dm.corpus.utterances)[0])
    dm.use_upstream(Upstream.of(model.frontend, "cpu", dm.corpus.upstream_cache))
    cached = next(iter(dm.test_dataloader()))
    with torch.no_grad():
        feats, frames = model.frontend_features(cached)
        from_cache = model.classify(model.normalizer(feats, frames), frames).softmax(-1)
        index = cached["index"].tolist()
        waves = [dm.corpus.audio(dm.fold.test[i]) for i in index]
        lengths = torch.tensor([w.numel() for w in waves])
        batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
        from_waves = model(batch, lengths).softmax(-1)
    torch.testing.assert_close(from_cache, from_waves, atol=2e-3, rtol=0)  # the cache keeps float16


def test_predict_export_and_diagnose_a_ge2e_run(ge2e_run, tmp_path, capsys):
    import soundfile as sf

    from ser.diagnose.context import Options
    from ser.diagnose.core import diagnose
    from ser.export import export
    from ser.predict import main as predict

    cfg, _ = ge2e_run
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    sf.write(tmp_path / "a.wav", speechlike(1.5), 16000)
    assert predict([f"ckpt={ckpt}", f"input={tmp_path / 'a.wav'}"]) == 0
    assert capsys.readouterr().out.count("\n") == 2
    exported = export(ckpt, "torchscript", tmp_path / "model.pt")
    assert json.loads(exported.with_name(exported.name + ".labels.json").read_text())["max_abs_diff_vs_eager"] < 1e-4
    options = Options(snrs=(10,), out=str(tmp_path / "diagnosis"), probes=False, retrain="false")
    report = diagnose(cfg.paths.output_dir, options)
    assert "layer 2" in report.read_text()


def test_wave_augmentation_runs_the_upstream_on_augmented_training_audio(tmp_path, cache_dir, caplog):
    cfg = compose_config(["debug=smoke", "features=ge2e", "model=pool", "augment=noise"], tmp_path / "run", cache_dir)
    with caplog.at_level("INFO"):
        train(cfg)
    assert "feature cache serves evaluation only" in caplog.text


def test_fine_tuning_starts_after_the_warmup_epochs_at_its_own_rate(tmp_path, cache_dir):
    def upstream_after(epochs: int) -> dict:
        cfg = compose_config(["debug=smoke", "features=ge2e", "model=pool", "features.freeze=false", "features.lr=1e-3",
                              "features.warmup_epochs=1", f"trainer.max_epochs={epochs}", "scheduler=none"],
                             tmp_path / str(epochs), cache_dir)
        train(cfg)
        model = load_model(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
        groups = model.configure_optimizers().param_groups
        assert [g["lr"] for g in groups] == [cfg.optimizer.lr, 1e-3]
        return {k: v for k, v in model.state_dict().items() if k.startswith("frontend.net.")}

    pretrained = GE2E(freeze=False).state_dict()
    after_warmup = upstream_after(1)
    assert all(torch.equal(v, pretrained[k.removeprefix("frontend.")]) for k, v in after_warmup.items())
    tuned = upstream_after(2)
    assert any(not torch.equal(v, pretrained[k.removeprefix("frontend.")]) for k, v in tuned.items())


@pytest.mark.parametrize("model_type, norm", [("wav2vec2", "layer"), ("hubert", "group"), ("wavlm", "layer"),
                                              ("data2vec-audio", "layer")])
def test_ssl_models_from_a_local_folder_are_padding_invariant(tmp_path, model_type, norm):
    from ser.features.ssl import SSL

    frontend = SSL(str(save_tiny_ssl(tmp_path, model_type, norm)), layers=[0, 2], layer_weights="stack")
    waves, lengths = padded([16000, 7000])
    feats, frames = frontend(waves, lengths)
    assert feats.shape == (2, 32, 199) and frames.tolist() == [199, 87] and frontend.hop_length == 80
    alone, _ = frontend(waves[1:, :7000], lengths[1:])
    torch.testing.assert_close(feats[1, :, :87], alone[0], atol=1e-4, rtol=1e-4)
    assert feats[1, :, 87:].abs().max() == 0


def test_ssl_trains_offline_from_a_local_folder(tiny_ssl, tmp_path, cache_dir):
    cfg = compose_config(["debug=smoke", "features=ssl", f"features.model={tiny_ssl}", "model=pool"], tmp_path, cache_dir)
    assert 0 <= train(cfg)["test/ua"] <= 1
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert model.frontend.mix is not None and model.frontend.out_features == 16


def test_a_hub_id_without_network_says_how_to_use_a_local_folder():
    from ser.features.ssl import SSL

    with pytest.raises(OSError, match="features.model=<folder>"):
        SSL("facebook/wav2vec2-base")


def test_the_extraction_batch_is_bounded_by_memory_not_seconds(tmp_path):
    from ser.data.upstream_cache import UpstreamCache
    from ser.features.ssl import SSL

    frontend = SSL(str(save_tiny_ssl(tmp_path, "wav2vec2", "layer")), layers=[0, 1])
    cache = UpstreamCache(batch_seconds=160, batch_mb=0.25)
    budget = cache.batch_samples(frontend)
    assert budget == int(0.25 * 2**20 / frontend.activation_bytes_per_sample) < 160 * 16000
    waves = [0.1 * torch.randn(n) for n in (4000, 9000, 16000, 3000, 12000)]
    sizes = []
    real = frontend.encode
    frontend.encode = lambda w, n: (sizes.append(w.numel()), real(w, n))[1]
    out = cache.features(frontend, waves)
    assert max(sizes) <= max(budget, 16000) and len(sizes) > 1  # several batches, none over the budget
    frames = frontend.frame_lengths(torch.tensor([w.numel() for w in waves])).tolist()
    assert [o.shape[-1] for o in out] == frames
