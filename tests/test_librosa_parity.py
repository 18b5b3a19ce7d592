"""Log-mel and MFCC configured like librosa's match librosa (the dev extra has it).

Tolerance: 1e-3 absolute on natural-log mel power (about 0.004 dB) for bands above -10 (log),
and 1e-3 relative to the coefficient scale for MFCCs. Our MFCCs use the natural log where
librosa's use dB, so librosa's are ours times 10 / ln 10."""

import math

import numpy as np
import pytest
import torch

from ser.features.frontend import MFCC, LogMel

librosa = pytest.importorskip("librosa")


@pytest.fixture(scope="module")
def wave():
    rng = np.random.default_rng(0)
    t = np.arange(24000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 180 * t * (1 + 0.2 * t)) + 0.05 * rng.normal(size=t.size)
    return x.astype(np.float32)


def librosa_mel(x):
    return librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=512, hop_length=160, win_length=400, window="hann", center=True,
        pad_mode="constant", power=2.0, n_mels=64, fmin=20.0, fmax=8000.0, htk=False, norm="slaney",
    )


def test_log_mel_matches_librosa(wave):
    ours, _ = LogMel()(torch.from_numpy(wave)[None], torch.tensor([wave.size]))
    ref = np.log(librosa_mel(wave) + 1e-6)
    assert ours.shape[1:] == ref.shape
    loud = ref > -10
    np.testing.assert_allclose(ours[0].numpy()[loud], ref[loud], atol=1e-3)


def test_mfcc_matches_librosa(wave):
    ours, _ = MFCC(n_mfcc=40)(torch.from_numpy(wave)[None], torch.tensor([wave.size]))
    ref = librosa.feature.mfcc(S=10 * np.log10(librosa_mel(wave) + 1e-6), n_mfcc=40, dct_type=2, norm="ortho")
    scaled = ours[0].numpy() * 10 / math.log(10)
    np.testing.assert_allclose(scaled, ref, atol=1e-3 * np.abs(ref).max())
