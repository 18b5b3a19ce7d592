"""Frontends: (B, F, T) layout, frame lengths, masked padding, normalisation."""

import pytest
import torch

from ser.features.frontend import MFCC, LogMel


@pytest.mark.parametrize("normalize", ["utterance", "none"])
@pytest.mark.parametrize("cls, rows", [(LogMel, 64), (MFCC, 40)])
def test_shapes_lengths_and_zero_padding(cls, rows, normalize):
    frontend = cls(normalize=normalize)
    lengths = torch.tensor([16000, 8000, 1600])
    waves = torch.randn(3, 16000) * (torch.arange(16000)[None] < lengths[:, None])
    feats, frames = frontend(waves, lengths)
    assert feats.shape == (3, rows, 101)
    assert frames.tolist() == [101, 51, 11]
    assert torch.isfinite(feats).all()
    for b, n in enumerate(frames):
        assert feats[b, :, n:].abs().max() == 0 if n < 101 else True


def test_utterance_normalisation_ignores_padding():
    lengths = torch.tensor([8000, 4000])
    waves = torch.randn(2, 8000) * (torch.arange(8000)[None] < lengths[:, None])
    feats, frames = LogMel(normalize="utterance")(waves, lengths)
    valid = feats[1, :, : frames[1]]
    torch.testing.assert_close(valid.mean(-1), torch.zeros(64), atol=1e-4, rtol=0)
    torch.testing.assert_close(valid.std(-1, unbiased=False), torch.ones(64), atol=1e-2, rtol=0)


@pytest.mark.parametrize("cls", [LogMel, MFCC])
def test_global_statistics_come_from_fit_and_are_saved(cls):
    lengths = torch.tensor([8000, 5000])
    waves = torch.randn(2, 8000) * (torch.arange(8000)[None] < lengths[:, None])
    frontend = cls(normalize="global")
    with pytest.raises(RuntimeError, match="fit_stats"):
        frontend(waves, lengths)
    frontend.fit_stats([{"waves": waves, "lengths": lengths}])
    feats, frames = frontend(waves, lengths)
    valid = torch.cat([feats[0, :, : frames[0]], feats[1, :, : frames[1]]], dim=-1)
    torch.testing.assert_close(valid.mean(-1), torch.zeros(frontend.out_features), atol=1e-4, rtol=0)
    reloaded = cls(normalize="global")
    reloaded.load_state_dict(frontend.state_dict())
    torch.testing.assert_close(reloaded(waves, lengths)[0], feats)


def test_louder_input_gives_larger_log_mel_without_normalisation():
    wave = torch.randn(1, 8000) * 0.01
    lengths = torch.tensor([8000])
    quiet, _ = LogMel(normalize="none")(wave, lengths)
    loud, _ = LogMel(normalize="none")(wave * 10, lengths)
    assert (loud - quiet).mean().item() == pytest.approx(2 * torch.log(torch.tensor(10.0)).item(), abs=0.05)


def test_bad_options_name_the_key():
    with pytest.raises(ValueError, match="features.normalize"):
        LogMel(normalize="global-ish")
    with pytest.raises(ValueError, match="n_mfcc"):
        MFCC(n_mfcc=80, n_mels=64)


@pytest.mark.parametrize("cls", [LogMel, MFCC])
def test_stacked_rows_are_padding_invariant(cls):
    frontend = cls(deltas=2, prosody=True, spectral=True, normalize="none")
    base = 64 if cls is LogMel else 40
    assert frontend.out_features == 3 * base + 8
    lengths = torch.tensor([16000, 9000])
    waves = torch.randn(2, 16000) * 0.1 * (torch.arange(16000)[None] < lengths[:, None])
    batch, frames = frontend(waves, lengths)
    alone, _ = frontend(waves[1:, :9000], lengths[1:])
    assert batch.shape[1] == frontend.out_features and torch.isfinite(batch).all()
    torch.testing.assert_close(batch[1, :, : frames[1]], alone[0], atol=1e-4, rtol=1e-4)


def test_prosody_tracks_f0_and_voicing():
    from ser.features.prosody import Prosody

    t = torch.arange(16000) / 16000
    voiced = torch.sign(torch.sin(2 * torch.pi * 200 * t)) * 0.3  # a 200 Hz pulse-like wave
    noise = torch.randn(16000) * 0.3
    rows = Prosody()(torch.stack([voiced, noise]))
    f0_st, voicing = rows[:, 0, 10:-10], rows[:, 1, 10:-10]
    expected = 12 * torch.log2(torch.tensor(200 / 50))
    assert (f0_st[0] - expected).abs().median() < 0.3
    assert voicing[0].median() > 0.8 and voicing[1].median() < 0.45
    assert rows[1, 3].mean() > rows[0, 3].mean()  # noise crosses zero more often


def test_speaker_normalisation_centres_each_speaker_and_falls_back_to_global():
    torch.manual_seed(0)
    lengths = torch.tensor([8000, 6000, 8000])
    # Speaker 1 is 20 dB louder than speaker 0: per-speaker statistics must remove that offset.
    waves = torch.randn(3, 8000) * torch.tensor([[0.01], [0.01], [0.1]]) * (torch.arange(8000)[None] < lengths[:, None])
    speakers = torch.tensor([0, 0, 1])
    batch = {"waves": waves, "lengths": lengths, "speakers": speakers}
    frontend = LogMel(normalize="speaker")
    frontend.fit_stats([batch])
    frontend.fit_speaker_stats([batch], n_speakers=3)  # speaker 2 has no audio: global statistics
    assert frontend.speaker_mean.shape == (3, 64)
    torch.testing.assert_close(frontend.speaker_mean[2], frontend.mean)
    feats, frames = frontend(waves, lengths, speakers)
    own = feats[2, :, : frames[2]].mean(-1)
    torch.testing.assert_close(own, torch.zeros(64), atol=1e-3, rtol=0)
    pooled = torch.cat([feats[0, :, : frames[0]], feats[1, :, : frames[1]]], -1).mean(-1)
    torch.testing.assert_close(pooled, torch.zeros(64), atol=1e-3, rtol=0)
    # Unknown speakers (-1, or no ids at all, as in prediction) use the global statistics.
    fallback, _ = frontend(waves, lengths, torch.tensor([-1, -1, -1]))
    torch.testing.assert_close(fallback, frontend(waves, lengths)[0])
    glob = LogMel(normalize="global")
    glob.fit_stats([batch])
    torch.testing.assert_close(fallback, glob(waves, lengths)[0])
    # The speaker table travels in the state dict, whatever its size.
    reloaded = LogMel(normalize="speaker")
    reloaded.load_state_dict(frontend.state_dict())
    torch.testing.assert_close(reloaded(waves, lengths, speakers)[0], feats)


@pytest.mark.parametrize("cls", [LogMel, MFCC])
def test_cpu_chunking_gives_the_same_features_as_the_whole_batch(cls, monkeypatch):
    """The CPU frontend splits big batches into row groups for speed; the features must not change."""
    frontend = cls(normalize="none", deltas=1, spectral=True)
    waves, lengths = torch.randn(5, 12000), torch.tensor([12000, 9000, 7000, 4000, 1000])
    whole = frontend(waves, lengths)[0]
    monkeypatch.setattr(cls, "cpu_chunk_frames", 100)  # 75 frames per clip: one clip per group
    assert len(frontend._cpu_chunks(waves)) == 5
    torch.testing.assert_close(frontend(waves, lengths)[0], whole)
