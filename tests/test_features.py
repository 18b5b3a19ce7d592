"""Spectrogram frontends and normalisation: (B, F, T) layout, frame lengths, masked padding, statistics."""

import pytest
import torch

from ser.features.frontend import MFCC, LogMel
from ser.features.normalize import FeatureNorm
from ser.features.spectrogram import MelSpectrogram
from ser.nn import Moments


def padded(lengths: list[int], scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    lengths_t = torch.tensor(lengths)
    waves = torch.randn(len(lengths), max(lengths)) * scale * (torch.arange(max(lengths))[None] < lengths_t[:, None])
    return waves, lengths_t


def fitted(mode: str, feats: torch.Tensor, frames: torch.Tensor, speakers: torch.Tensor | None = None,
           n_speakers: int = 0) -> FeatureNorm:
    norm = FeatureNorm(mode, feats.shape[1])
    norm.fit(Moments.of([(feats, frames, None)], 1, feats.shape[1]))
    if speakers is not None:
        norm.fit_speakers(Moments.of([(feats, frames, speakers)], n_speakers, feats.shape[1]))
    return norm


@pytest.mark.parametrize("cls, rows", [(LogMel, 64), (MFCC, 40)])
def test_shapes_lengths_and_zero_padding(cls, rows):
    frontend = cls()
    waves, lengths = padded([16000, 8000, 1600])
    feats, frames = frontend(waves, lengths)
    assert feats.shape == (3, rows, 101) and frontend.out_features == rows and frontend.hop_length == 160
    assert frames.tolist() == [101, 51, 11]
    assert torch.isfinite(feats).all()
    for b, n in enumerate(frames):
        assert feats[b, :, n:].abs().max() == 0 if n < 101 else True


def test_utterance_normalisation_ignores_padding():
    waves, lengths = padded([8000, 4000])
    feats, frames = FeatureNorm("utterance", 64)(*LogMel()(waves, lengths)), LogMel().frame_lengths(lengths)
    valid = feats[1, :, : frames[1]]
    torch.testing.assert_close(valid.mean(-1), torch.zeros(64), atol=1e-4, rtol=0)
    torch.testing.assert_close(valid.std(-1, unbiased=False), torch.ones(64), atol=1e-2, rtol=0)
    assert feats[1, :, frames[1]:].abs().max() == 0


@pytest.mark.parametrize("cls", [LogMel, MFCC])
def test_global_statistics_are_handed_to_the_norm_and_saved(cls):
    waves, lengths = padded([8000, 5000])
    feats, frames = cls()(waves, lengths)
    norm = FeatureNorm("global", feats.shape[1])
    assert norm.needs_fit
    with pytest.raises(RuntimeError, match="fit the statistics"):
        norm(feats, frames)
    norm.fit(Moments.of([(feats, frames, None)], 1, feats.shape[1]))
    out = norm(feats, frames)
    valid = torch.cat([out[0, :, : frames[0]], out[1, :, : frames[1]]], dim=-1)
    torch.testing.assert_close(valid.mean(-1), torch.zeros(feats.shape[1]), atol=1e-4, rtol=0)
    reloaded = FeatureNorm("global", feats.shape[1])
    reloaded.load_state_dict(norm.state_dict())
    assert not reloaded.needs_fit
    torch.testing.assert_close(reloaded(feats, frames), out)


def test_louder_input_gives_larger_log_mel():
    wave = torch.randn(1, 8000) * 0.01
    lengths = torch.tensor([8000])
    quiet, _ = LogMel()(wave, lengths)
    loud, _ = LogMel()(wave * 10, lengths)
    assert (loud - quiet).mean().item() == pytest.approx(2 * torch.log(torch.tensor(10.0)).item(), abs=0.05)


@pytest.mark.parametrize("cls", [LogMel, MFCC])
def test_level_db_takes_the_recording_level_out_of_the_features(cls):
    """A speaker recorded 26 dB quieter (SAVEE's KL is 22 dB under the others): as recorded, its quiet bands sink
    under the log's floor; with level_db, both copies give the same features, padding untouched."""
    waves, lengths = padded([8000, 5000], scale=0.05)
    quiet = waves * 0.05
    as_recorded = cls()
    assert (as_recorded(waves, lengths)[0] - as_recorded(quiet, lengths)[0]).abs().max() > 1.0
    levelled = cls(level_db=-26.0)
    loud_feats, frames = levelled(waves, lengths)
    torch.testing.assert_close(levelled(quiet, lengths)[0], loud_feats, atol=1e-3, rtol=1e-3)
    assert (loud_feats[1, :, frames[1]:] == 0).all()


def test_bad_options_name_the_key():
    with pytest.raises(ValueError, match="features.normalize"):
        FeatureNorm("global-ish", 4)
    with pytest.raises(ValueError, match="n_mfcc"):
        MFCC(n_mfcc=80, n_mels=64)
    with pytest.raises(ValueError, match="features.deltas"):
        LogMel(deltas=3)


@pytest.mark.parametrize("cls", [LogMel, MFCC])
def test_stacked_rows_are_padding_invariant_and_named(cls):
    frontend = cls(deltas=2, prosody=True, spectral=True)
    base = 64 if cls is LogMel else 40
    assert frontend.out_features == 3 * base + 8
    groups = frontend.row_groups()
    assert sorted(r for rows in groups.values() for r in rows) == list(range(frontend.out_features))
    assert {"deltas", "delta-deltas", "prosody (F0, voicing, energy, ZCR)"} <= set(groups)
    waves, lengths = padded([16000, 9000], 0.1)
    batch, frames = frontend(waves, lengths)
    alone, _ = frontend(waves[1:, :9000], lengths[1:])
    assert batch.shape[1] == frontend.out_features and torch.isfinite(batch).all()
    torch.testing.assert_close(batch[1, :, : frames[1]], alone[0], atol=1e-4, rtol=1e-4)
    assert batch[1, :, frames[1]:].abs().max() == 0


def test_prosody_tracks_f0_and_voicing():
    from ser.features.rows import Prosody

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
    raw, frames = LogMel()(waves, lengths)
    norm = fitted("speaker", raw, frames, speakers, n_speakers=3)  # speaker 2 has no audio: global statistics
    assert norm.speaker_mean.shape == (3, 64)
    torch.testing.assert_close(norm.speaker_mean[2], norm.mean)
    feats = norm(raw, frames, speakers)
    own = feats[2, :, : frames[2]].mean(-1)
    torch.testing.assert_close(own, torch.zeros(64), atol=1e-3, rtol=0)
    pooled = torch.cat([feats[0, :, : frames[0]], feats[1, :, : frames[1]]], -1).mean(-1)
    torch.testing.assert_close(pooled, torch.zeros(64), atol=1e-3, rtol=0)
    # Unknown speakers (-1, or no ids at all, as in prediction) use the global statistics.
    fallback = norm(raw, frames, torch.tensor([-1, -1, -1]))
    torch.testing.assert_close(fallback, norm(raw, frames))
    torch.testing.assert_close(fallback, fitted("global", raw, frames)(raw, frames))
    # The speaker table travels in the state dict, whatever its size.
    reloaded = FeatureNorm("speaker", 64)
    reloaded.load_state_dict(norm.state_dict())
    torch.testing.assert_close(reloaded(raw, frames, speakers), feats)


@pytest.mark.parametrize("cls", [LogMel, MFCC])
def test_cpu_chunking_gives_the_same_features_as_the_whole_batch(cls, monkeypatch):
    """The CPU frontend splits big batches into row groups for speed; the features must not change."""
    frontend = cls(deltas=1, spectral=True)
    waves, lengths = torch.randn(5, 12000), torch.tensor([12000, 9000, 7000, 4000, 1000])
    whole = frontend(waves, lengths)[0]
    monkeypatch.setattr(MelSpectrogram, "cpu_chunk_frames", 100)  # 75 frames per clip: one clip per group
    assert len(frontend.spectrogram.cpu_chunks(waves)) == 5
    torch.testing.assert_close(frontend(waves, lengths)[0], whole)


def test_moments_in_row_slices_equal_the_whole(monkeypatch):
    """Moments.add goes through wide features (an SSL model's 13 x 768 rows) in slices to bound its float64
    copies: the sums equal a direct computation over the valid frames of each group, whatever the slice."""
    torch.manual_seed(0)
    feats, frames, group = torch.randn(4, 37, 20), torch.tensor([20, 5, 13, 1]), torch.tensor([0, 1, 0, 1])
    valid = [feats[b, :, : frames[b]].double() for b in range(4)]
    want = torch.stack([torch.cat([valid[b] for b in range(4) if group[b] == g], -1).sum(-1) for g in (0, 1)])
    want_sq = torch.stack([torch.cat([valid[b] for b in range(4) if group[b] == g], -1).square().sum(-1) for g in (0, 1)])
    for chunk in (1, 4 * 20 * 3, 2**22):
        monkeypatch.setattr(Moments, "CHUNK", chunk)
        m = Moments(2, 37)
        m.add(feats, frames, group)
        torch.testing.assert_close(m.total, want)
        torch.testing.assert_close(m.total_sq, want_sq)
        assert m.count.flatten().tolist() == [33.0, 6.0]


def test_layer_mix_one_layer_at_a_time_equals_the_whole_stack():
    """LayerMix sums the layers one at a time (bounded memory): the same values and gradients as normalising and
    weighting the whole (B, L, T', H) stack at once, SUPERB's way."""
    from ser.features.upstream import LayerMix

    torch.manual_seed(0)
    mix = LayerMix(num_layers=3, hidden_size=8)
    with torch.no_grad():
        mix.logits.copy_(torch.tensor([0.5, -1.0, 2.0]))
    stacked = torch.randn(2, 3 * 8, 5, requires_grad=True)
    layers = stacked.reshape(2, 3, 8, 5).transpose(2, 3)
    want = (torch.nn.functional.layer_norm(layers, (8,)) * mix.logits.softmax(0)[None, :, None, None]).sum(1)
    want = want.transpose(1, 2)
    got = mix(stacked)
    torch.testing.assert_close(got, want)
    grads = torch.autograd.grad(got.square().sum(), [stacked, mix.logits])
    torch.testing.assert_close(grads, torch.autograd.grad(want.square().sum(), [stacked, mix.logits]))
