"""Augmentation: noise lands at the requested SNR, masks stay inside the utterance, speed changes length."""

import pytest
import torch

from ser.features.augment import Augment, add_noise


@pytest.mark.parametrize("color", ["white", "pink", "brown", "babble"])
def test_noise_is_added_at_the_requested_snr(color):
    torch.manual_seed(0)
    t = torch.arange(32000) / 16000
    waves = torch.stack([torch.sin(2 * torch.pi * f * t) * a for f, a in ((200, 0.5), (330, 0.1), (440, 0.3), (150, 0.2))])
    lengths = torch.tensor([32000, 20000, 32000, 25000])
    waves = waves * (torch.arange(32000)[None] < lengths[:, None])
    snr = torch.tensor([0.0, 5.0, 10.0, 20.0])
    noisy = add_noise(waves, lengths, snr, color)
    for i, n in enumerate(lengths.tolist()):
        noise = noisy[i, :n] - waves[i, :n]
        measured = 10 * torch.log10(waves[i, :n].pow(2).mean() / noise.pow(2).mean())
        assert measured.item() == pytest.approx(snr[i].item(), abs=0.1)
        assert noisy[i, n:].abs().sum() == 0  # padding stays silent


def test_probability_zero_changes_nothing_and_one_changes_everything():
    waves, lengths = torch.randn(4, 8000), torch.full((4,), 8000)
    off = Augment()
    assert torch.equal(off.waves(waves, lengths)[0], waves)
    on = Augment(noise_p=1.0, snr_db=(10, 10), colors=["white"])
    assert not torch.isclose(on.waves(waves, lengths)[0], waves).all(dim=1).any()


def test_speed_perturbation_changes_lengths():
    torch.manual_seed(0)
    aug = Augment(speed_p=1.0, speeds=[0.9])
    out, lengths = aug.waves(torch.randn(2, 9000), torch.tensor([9000, 4500]))
    assert abs(lengths[0] - 10000) <= 1 and abs(lengths[1] - 5000) <= 1  # 0.9x speed: 1/0.9 as long
    assert out.shape == (2, int(lengths.max()))


def test_specaugment_masks_only_valid_frames():
    torch.manual_seed(0)
    feats, lengths = torch.ones(8, 64, 200), torch.full((8,), 150)
    out = Augment(spec_p=1.0, freq_masks=0, time_masks=2, time_width=20).features(feats, lengths)
    assert (out == 0).any() and out[:, :, 150:].eq(1).all()  # time masks stay inside the utterance
    out = Augment(spec_p=1.0, freq_masks=1, freq_width=10, time_masks=0).features(feats, lengths)
    masked_rows = (out == 0).all(dim=2).sum(dim=1)
    assert (masked_rows <= 10).all() and masked_rows.sum() > 0


def test_unknown_noise_color_is_named():
    with pytest.raises(ValueError, match="augment.colors"):
        Augment(colors=["purple"])


def test_speed_perturbation_resamples_the_signal_not_just_the_length():
    """A 200 Hz tone at 0.9x speed comes out at 180 Hz; rows left alone are untouched."""
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 200 * t)
    torch.manual_seed(0)
    out, lengths = Augment(speed_p=1.0, speeds=[0.9]).waves(tone[None].repeat(2, 1), torch.tensor([16000, 16000]))
    peak = torch.fft.rfft(out[0, : lengths[0]]).abs().argmax() * 16000 / int(lengths[0])
    assert abs(float(peak) - 180) < 2
    same, _ = Augment(speed_p=1.0, speeds=[1.0]).waves(tone[None], torch.tensor([16000]))
    assert torch.equal(same[0], tone)
