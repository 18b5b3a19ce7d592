"""Multi-condition training (``conditions.*``): degraded copies of every training utterance, made once.

Each training utterance gets ``copies`` versions of itself as a different microphone, room or
background would have recorded it, and each epoch trains on one of them (or on the clean utterance,
with probability ``clean_p``). A copy is drawn from its own seeded generator (the utterance's audio
digest and the copy's number), so the same copy comes out in every fold, run and sweep job; with a
frozen upstream (``features=ge2e|ssl``) each copy runs through the upstream once and is cached like the
clean utterance, so the pretrained path trains as fast as without copies.

A copy is, in this order (each step with its probability):

- **another voice** (``pitch_p``, off by default): pitch and formants shifted together by a number of
  semitones drawn from ``semitones``, the length kept (phase-vocoder time stretch, then soxr
  resampling): a lower or higher voice, for variety of speakers rather than of recordings;
- **reverberation** (``reverb_p``): convolved with a room impulse response simulated by
  ``pyroomacoustics`` (a shoebox room of 3x3x2.5 to 8x6x3.5 m, RT60 drawn from ``rt60_s``, source and
  microphone at random places), direct-path aligned and level-matched, cut to the utterance's length;
- **telephone band** (``telephone_p``): 300-3400 Hz;
- **noise** (``noise_p``): one of ``noises`` (``white``, ``pink``, ``babble``) at an SNR drawn from
  ``snr_db``; babble mixes utterances of *other training speakers* of the fold, never a test or
  validation speaker and never the utterance's own speaker;
- **gain**: drawn from [-gain_db, gain_db], then clipped to full scale as a converter would.

Leaving a noise out of ``noises`` holds it out of training, to measure how robustness carries over
to a noise the model never heard (``inject.test_noise=<it>``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torchaudio

from ser.acoustics import BABBLE_TALKERS, NOISES, TELEPHONE, band_pass, full_scale, gain, mix_at_snr, noise
from ser.audio import resample

ROOM_MIN, ROOM_MAX = (3.0, 3.0, 2.5), (8.0, 6.0, 3.5)
MAX_REFLECTION_ORDER = 17  # image sources beyond this add little to a 16 kHz RIR and cost seconds


@dataclass(frozen=True)
class Plan:
    """What one copy is: drawn before any audio is touched, so copies without babble can be reused across folds."""

    rt60_s: float | None
    telephone: bool
    noise: str | None
    snr_db: float
    gain_db: float
    seed: int  # for the noise, the room and the babble talkers
    semitones: float | None = None  # pitch and formants shifted (pitch_p)

    @property
    def fold_independent(self) -> bool:
        return self.noise != "babble"

    def describe(self) -> str:
        parts = [f"voice {self.semitones:+.1f} semitones"] if self.semitones else []
        parts += [f"reverb RT60 {self.rt60_s:.2f} s"] if self.rt60_s else []
        parts += ["telephone band"] if self.telephone else []
        parts += [f"{self.noise} noise at {self.snr_db:.1f} dB"] if self.noise else []
        return ", ".join(parts + [f"gain {self.gain_db:+.1f} dB"])


@dataclass(frozen=True)
class Conditions:
    """The ``conditions`` config (``conf/train.yaml``). ``copies=0`` turns multi-condition training off.

    Args:
        copies: degraded copies per training utterance (K).
        clean_p: probability that an epoch trains on the clean utterance instead of one of its copies.
        noise_p: probability that a copy has noise; noises: the kinds drawn from; snr_db: [low, high] dB.
        reverb_p: probability of room reverberation; rt60_s: [low, high] reverberation time in seconds.
        telephone_p: probability of the telephone band (300-3400 Hz).
        gain_db: gain drawn from [-gain_db, gain_db].
        pitch_p: probability that a copy is another voice; semitones: [low, high] of its pitch shift.
        seed: with each utterance's audio digest and the copy's number, decides every copy.
    """

    copies: int = 0
    clean_p: float = 0.25
    noise_p: float = 0.8
    noises: Sequence[str] = NOISES
    snr_db: Sequence[float] = (0.0, 20.0)
    reverb_p: float = 0.25
    rt60_s: Sequence[float] = (0.2, 0.8)
    telephone_p: float = 0.1
    gain_db: float = 6.0
    pitch_p: float = 0.0
    semitones: Sequence[float] = (-3.0, 3.0)
    seed: int = 0
    _rirs: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "noises", tuple(self.noises))
        unknown = sorted(set(self.noises) - set(NOISES))
        if unknown:
            raise ValueError(f"conditions.noises: unknown {unknown}; choose from {list(NOISES)}")
        if int(self.copies) < 0:
            raise ValueError(f"conditions.copies={self.copies}: a number of copies, 0 or more")
        for name in ("clean_p", "noise_p", "reverb_p", "telephone_p", "pitch_p"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"conditions.{name}={getattr(self, name)}: a probability in [0, 1]")
        if self.noise_p > 0 and not self.noises:
            raise ValueError("conditions.noises is empty but conditions.noise_p > 0: list a noise or set noise_p=0")
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"conditions.snr_db={list(self.snr_db)}: [low, high] in dB")
        if len(self.rt60_s) != 2 or not 0.05 <= self.rt60_s[0] <= self.rt60_s[1]:
            raise ValueError(f"conditions.rt60_s={list(self.rt60_s)}: [low, high] in seconds, low >= 0.05")
        if len(self.semitones) != 2 or self.semitones[0] > self.semitones[1]:
            raise ValueError(f"conditions.semitones={list(self.semitones)}: [low, high] pitch shift in semitones")
        if self.copies and self.reverb_p > 0:
            _pyroomacoustics()  # fail at start, not after the first fold, when it is missing

    @property
    def active(self) -> bool:
        return int(self.copies) > 0

    def describe(self) -> str:
        if not self.active:
            return "none"
        noises = "/".join(self.noises) if self.noise_p > 0 else "no"
        voices = (f"voices {self.semitones[0]:+g} to {self.semitones[1]:+g} semitones ({100 * self.pitch_p:.0f} %), "
                  if self.pitch_p > 0 else "")
        return (f"{self.copies} copies per training utterance (clean drawn {100 * self.clean_p:.0f} % of the time): "
                f"{voices}{noises} noise at {self.snr_db[0]:g}-{self.snr_db[1]:g} dB SNR ({100 * self.noise_p:.0f} %), "
                f"reverberation RT60 {self.rt60_s[0]:g}-{self.rt60_s[1]:g} s ({100 * self.reverb_p:.0f} %), "
                f"telephone band ({100 * self.telephone_p:.0f} %), gain ±{self.gain_db:g} dB")

    def plan(self, digest: str, copy: int) -> Plan:
        """Copy ``copy`` of the utterance whose decoded audio has ``digest``: the same in every fold and run."""
        rng = np.random.default_rng([int(self.seed), zlib.crc32(digest.encode()), int(copy)])
        rt60 = float(rng.uniform(*self.rt60_s)) if rng.random() < self.reverb_p else None
        telephone = bool(rng.random() < self.telephone_p)
        noise = str(rng.choice(self.noises)) if self.noises and rng.random() < self.noise_p else None
        snr = float(rng.uniform(*self.snr_db))
        gain = float(rng.uniform(-self.gain_db, self.gain_db))
        seed = int(rng.integers(2**31))
        # drawn last and only when asked for, so the copies of configs without voices stay as they were
        shift = float(rng.uniform(*self.semitones)) if self.pitch_p > 0 and rng.random() < self.pitch_p else None
        return Plan(rt60, telephone, noise, snr, gain, seed, shift)

    def render(self, wave: torch.Tensor, plan: Plan, sample_rate: int, babble: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """The copy ``plan`` describes of ``wave`` (T,): float32 (T,), the same length."""
        rng = np.random.default_rng(plan.seed)
        x = wave.double().numpy()
        if plan.semitones:
            x = shift_voice(x, plan.semitones, sample_rate)
        if plan.rt60_s:
            x = reverberate(x, self.room_response(plan.rt60_s, plan.seed, sample_rate))
        if plan.telephone:
            x = band_pass(x, *TELEPHONE, sample_rate)
        if plan.noise:
            x = mix_at_snr(x, noise(plan.noise, len(x), rng, babble), plan.snr_db)
        return torch.from_numpy(full_scale(gain(x, plan.gain_db)))

    def room_response(self, rt60_s: float, seed: int, sample_rate: int) -> np.ndarray:
        key = (round(rt60_s, 4), seed, sample_rate)
        if key not in self._rirs:
            self._rirs[key] = simulate_rir(rt60_s, np.random.default_rng(seed), sample_rate)
        return self._rirs[key]


def babble_talkers(digest: str, copy: int, seed: int, candidates: Sequence[int]) -> list[int]:
    """``BABBLE_TALKERS`` of ``candidates`` (utterance indices), in an order seeded by the utterance and copy.

    The order is over every candidate the caller passes (the fold's training utterances of other
    speakers), so two folds that share those utterances mix the same talkers and share the copy.
    """
    order = sorted(candidates, key=lambda i: zlib.crc32(f"{seed}/{digest}/{copy}/{i}".encode()))
    return order[:BABBLE_TALKERS]


def _pyroomacoustics():
    try:
        import pyroomacoustics
    except ImportError as err:
        raise ImportError("conditions.reverb_p > 0 simulates rooms with pyroomacoustics, which is not installed: "
                          "pip install -e '.[augment]' (or set conditions.reverb_p=0)") from err
    return pyroomacoustics


def simulate_rir(rt60_s: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A room impulse response (image-source method, a random shoebox room and positions), starting at its
    direct path and scaled to unit energy of that direct path, so reverberation keeps the level of the speech."""
    pra = _pyroomacoustics()
    dims = rng.uniform(ROOM_MIN, ROOM_MAX)
    absorption, order = pra.inverse_sabine(rt60_s, dims)
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption),
                       max_order=min(int(order), MAX_REFLECTION_ORDER))
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    peak = int(np.argmax(np.abs(rir)))
    return rir[peak:] / max(abs(rir[peak]), 1e-12)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``rir`` (FFT), cut to ``x``'s length, at ``x``'s RMS level."""
    n = len(x) + len(rir) - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: len(x)]
    return y * np.sqrt(np.mean(x**2) / max(np.mean(y**2), 1e-20))


def shift_voice(x: np.ndarray, semitones: float, sample_rate: int, n_fft: int = 512) -> np.ndarray:
    """``x`` with pitch and formants shifted by ``semitones``, its length kept: a phase-vocoder time stretch by
    the shift's ratio, then resampled back by it (as ``torchaudio.functional.pitch_shift``, with soxr, which
    takes any ratio; torchaudio's resampler is slow for rates without a large common divisor)."""
    ratio = 2.0 ** (semitones / 12.0)
    hop = n_fft // 4
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(torch.from_numpy(x), n_fft, hop, window=window, return_complex=True)
    advance = torch.linspace(0, np.pi * hop, spec.shape[0], dtype=torch.float64)[:, None]
    stretched = torchaudio.functional.phase_vocoder(spec, 1.0 / ratio, advance)
    y = torch.istft(stretched, n_fft, hop, window=window, length=int(round(len(x) * ratio))).numpy()
    rate = int(round(sample_rate * ratio))  # y read as recorded at this rate and brought back: ratio shorter
    y = resample(y.astype(np.float32), rate, sample_rate).astype(np.float64)
    y = np.pad(y, (0, max(len(x) - len(y), 0)))[: len(x)]
    return y * np.sqrt(np.mean(x**2) / max(np.mean(y**2), 1e-20))
