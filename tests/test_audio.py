"""Audio loading: mono, resampled, and bad files named with their reason."""

import numpy as np
import pytest
import soundfile as sf
import torch

from ser.audio import AudioError, load_audio


def cut_short(path, wave, rate=16000):
    """A WAV whose last half is missing, as a copy interrupted part-way leaves it (the header still promises it all)."""
    sf.write(path, wave, rate, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + (len(data) - 44) // 2])


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
        (lambda p: cut_short(p, tone(1.0)), "truncated: the header promises 32000 bytes of audio but the file holds"),
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


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 23998, 24414, 44100, 96000])
def test_any_rate_resamples_to_band_limited_16k(tmp_path, rate):
    """Tones below 8 kHz come out as the same tones at 16 kHz; a tone above it (aliasing) is removed."""
    seconds, n = 1.0, int(rate * 1.0)
    t = np.arange(n) / rate
    passband = [f for f in (220.0, 1000.0, 3500.0, 6500.0) if f < 0.4 * rate]
    wave = sum(0.1 * np.sin(2 * np.pi * f * t) for f in passband)
    alias = 0.1 * np.sin(2 * np.pi * 11000.0 * t) if rate > 22000 else 0.0
    sf.write(tmp_path / "x.wav", (wave + alias).astype(np.float32), rate, subtype="FLOAT")
    out = load_audio(tmp_path / "x.wav", 16000).numpy()
    assert abs(len(out) - round(seconds * 16000)) <= 1
    t16 = np.arange(len(out)) / 16000
    reference = sum(0.1 * np.sin(2 * np.pi * f * t16) for f in passband)
    inner = slice(800, -800)  # the filter's edges aside
    error = np.sqrt(np.mean((out[inner] - reference[inner]) ** 2) / np.mean(reference[inner] ** 2))
    assert error < 0.01  # -40 dB: the passband kept, no 11 kHz tone folded back to 5 kHz


def test_an_odd_rate_decodes_far_faster_than_realtime(tmp_path):
    """TESS's 24414 Hz: the old sinc resampler took about 3 s per second of audio; soxr takes milliseconds."""
    import time

    sf.write(tmp_path / "tess.wav", (0.1 * np.random.default_rng(0).standard_normal(24414 * 10)).astype(np.float32), 24414)
    start = time.perf_counter()
    load_audio(tmp_path / "tess.wav", 16000)
    assert time.perf_counter() - start < 1.0  # 10 s of audio: at least 10x realtime even on a slow, busy machine


@pytest.mark.parametrize(("rate", "subtype", "stored"), [(16000, "PCM_16", "int16"), (44100, "PCM_16", "float32"),
                                                         (16000, "FLOAT", "float32")])
def test_the_audio_store_keeps_every_sample_exactly(tmp_path, rate, subtype, stored):
    """int16 where that is lossless (16-bit at the target rate), float32 otherwise: equal to decoding, bit for bit."""
    from ser.data.audio_store import AudioCache

    rng = np.random.default_rng(0)
    path = tmp_path / "a.wav"
    sf.write(path, np.clip(0.3 * rng.standard_normal(rate), -1, 1), rate, subtype=subtype)
    handle, digest = AudioCache(tmp_path / "cache", 16000).load(path)
    assert np.dtype(handle.dtype).name == stored
    wave = handle.load()
    assert wave.dtype == torch.float32 and torch.equal(wave, load_audio(path, 16000))
    again, same = AudioCache(tmp_path / "cache", 16000).load(path)  # another run: from the store
    assert same == digest and torch.equal(again.load(), wave)
