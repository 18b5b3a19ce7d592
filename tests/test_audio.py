"""Audio loading: mono, resampled, and bad files named with their reason."""

import numpy as np
import pytest
import soundfile as sf
import torch

from ser.audio import AudioError, load_audio


def tone(seconds=0.5, rate=16000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def test_stereo_48k_becomes_mono_16k(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(0.5, 48000, channels=2), 48000)
    wave = load_audio(path, 16000)
    assert wave.dtype == torch.float32 and wave.ndim == 1
    assert abs(wave.numel() - 8000) <= 1
    assert 0.25 < wave.abs().max() < 0.35


def test_container_is_read_from_content_not_extension(tmp_path):
    path = tmp_path / "really_flac.wav"
    sf.write(path, tone(), 16000, format="FLAC")
    assert load_audio(path).numel() == 8000


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"RIFF0000WAVEjunkjunk"), "unreadable"),
        (lambda p: sf.write(p, np.zeros(8000), 16000), "silent"),
        (lambda p: sf.write(p, np.full(8000, np.nan), 16000, subtype="FLOAT"), "NaN"),
        (lambda p: sf.write(p, tone(0.01), 16000), "shorter"),
    ],
)
def test_bad_files_are_named_with_the_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason) as err:
        load_audio(path, 16000, min_duration_s=0.1)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")
