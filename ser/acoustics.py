"""Acoustic degradations, one definition each: noise colours and babble, mixing at an SNR, band limits,
levels and coarse quantisation. Used by the faults injected on purpose (``ser.data.inject``), the
multi-condition copies (``ser.data.conditions``), the diagnosis's noise check and the synthetic corpus's
recording channels, so that "white noise at 10 dB" or "the telephone band" means one thing everywhere.

Waves are float64 numpy arrays (T,); every function draws from the generator it is given and from
nothing else, so a seeded caller gets the same audio in every run. A leaf: it imports nothing of ``ser``
(it sits beside ``ser.audio`` rather than in ``ser.data`` because the corpora, a layer below the data
module, use it too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NOISES = ("white", "pink", "babble")
TELEPHONE = (300.0, 3400.0)  # the telephone band, Hz
BABBLE_TALKERS = 4  # utterances summed into babble: a crowd too dense to follow, as in noisy-speech corpora


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) noise with a 1/f power spectrum (not normalised), drawn from ``rng``."""
    size = 1 << (n - 1).bit_length()  # a power of two keeps the FFT fast
    white = rng.normal(size=size)
    return np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(size // 2 + 1) + 1.0), n=size)[:n]


def noise(kind: str, n: int, rng: np.random.Generator, babble: Sequence = ()) -> np.ndarray:
    """(n,) noise of unit power: ``white``, ``pink`` (1/f power) or ``babble`` (the ``babble`` waves, tensors or
    arrays (T,), each at equal level from a random offset, looped when shorter than ``n``)."""
    if kind == "white":
        out = rng.standard_normal(n)
    elif kind == "pink":
        out = pink_noise(n, rng)
    elif kind == "babble":
        if not len(babble):
            raise ValueError("babble needs utterances of other training speakers to mix; this fold has none")
        out = np.zeros(n)
        for wave in babble:
            talker = np.asarray(wave, dtype=np.float64)
            talker = np.tile(talker, n // max(len(talker), 1) + 1)
            start = int(rng.integers(len(talker) - n + 1))
            part = talker[start : start + n]
            out += part / max(np.sqrt(np.mean(part**2)), 1e-8)
    else:
        raise ValueError(f"noise kind {kind!r}: choose from {', '.join(NOISES)}")
    return out / max(np.sqrt(np.mean(out**2)), 1e-12)


def draw_talkers(rng: np.random.Generator, pool: int) -> np.ndarray:
    """Indices of ``BABBLE_TALKERS`` of ``pool`` candidate utterances (fewer when the pool is smaller), drawn
    from ``rng`` without replacement."""
    return rng.choice(pool, min(BABBLE_TALKERS, pool), replace=False)


def mix_at_snr(x: np.ndarray, added: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus ``added`` (unit power) scaled to ``snr_db`` below the power of ``x`` (over the whole wave)."""
    power = np.mean(x**2)
    return x + added * np.sqrt(power / 10 ** (snr_db / 10))


def band_pass(wave: np.ndarray, low: float | None, high: float | None, sample_rate: int) -> np.ndarray:
    """A recording channel: 4th-order Butterworth band-pass magnitude (zero phase), applied in the frequency
    domain; ``low`` or ``high`` None leaves that side open (a low- or high-pass)."""
    freqs = np.fft.rfftfreq(wave.size, 1 / sample_rate)
    gain = np.ones_like(freqs)
    with np.errstate(divide="ignore"):
        if low is not None:
            gain = gain / np.sqrt(1 + (low / np.maximum(freqs, 1e-9)) ** 8)
        if high is not None:
            gain = gain / np.sqrt(1 + (freqs / high) ** 8)
    return np.fft.irfft(np.fft.rfft(wave) * gain, n=wave.size)


def gain(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` made ``db`` decibels louder (quieter when negative)."""
    return x * 10 ** (db / 20)


def quantise(x: np.ndarray, bits: int) -> np.ndarray:
    """``x`` rounded to the levels of a ``bits``-bit converter (full scale 1)."""
    steps = 2 ** (bits - 1) - 1
    return np.round(x * steps) / steps


def full_scale(x: np.ndarray) -> np.ndarray:
    """``x`` clipped to [-1, 1] as a converter would, as float32."""
    return np.clip(x, -1.0, 1.0).astype(np.float32)
