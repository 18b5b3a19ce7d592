"""A built-in synthetic emotional-speech corpus, so everything runs with no download.

Source-filter synthesis at 16 kHz. A glottal pulse train follows an F0 contour (declination,
pitch accents on stressed syllables, a terminal rise or fall, jitter and shimmer), mixed with
aspiration noise; it is shaped frame by frame by a spectral envelope made of four vowel formants
that move from syllable to syllable, a glottal/radiation tilt and the voice's own tilt. Unvoiced
consonants are shaped noise; phrases are separated by pauses.

Emotions shift prosody and voice quality in the directions reported by Murray & Arnott (1993)
and later work (Banse & Scherer 1996, Juslin & Laukka 2003), relative to neutral:

==========  ==========  ==========  ==========  ========  ============  ======================
emotion     F0 mean     F0 range    rate        loudness  spectral tilt voice
==========  ==========  ==========  ==========  ========  ============  ======================
anger       higher      much wider  faster      louder    flatter       tense, abrupt accents
happiness   much higher much wider  faster      louder    flatter       breathy, rising ends
sadness     lower       narrower    slower      softer    steeper       breathy, falling ends
fear        much higher wider       much faster normal    flatter       irregular (jitter)
disgust     much lower  wider       much slower softer    steeper       wide falling ends
boredom     lower       much narrower slower    softer    steeper       monotone
==========  ==========  ==========  ==========  ========  ============  ======================

Each speaker has a base F0, a vocal-tract length (formant scale), a voice quality and an
expressivity of their own, and every utterance draws its parameters around the emotion's
profile with a spread set by ``difficulty`` (0: classes barely overlap, 1: heavy overlap), so
the task is learnable but not trivial. The corpus is deterministic from ``seed`` and is written
once to ``root/<hash of the settings>/`` as wav files plus ``manifest.csv``; later runs read it
back through the same loading path as real corpora.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ser.acoustics import band_pass, pink_noise
from ser.corpora.utterance import Utterance

log = logging.getLogger(__name__)

EMOTIONS = ("neutral", "happiness", "sadness", "anger", "fear", "disgust", "boredom")


@dataclass(frozen=True)
class Profile:
    """How an emotion moves the voice away from neutral (all shifts are additive)."""

    f0_st: float  # mean F0 shift in semitones
    range: float  # accent size multiplier
    rate: float  # syllable-rate multiplier
    level_db: float  # loudness
    tilt_db: float  # spectral tilt in dB/octave; positive is flatter (more high-frequency energy)
    jitter: float  # cycle-to-cycle period perturbation, fraction of a period
    shimmer: float  # cycle-to-cycle amplitude perturbation, fraction
    breath: float  # aspiration noise mixed into voicing
    final_st: float  # terminal contour over the last syllable, semitones
    pause: float  # probability of a pause between words
    formant: float  # formant scale shift (smiling raises, lowered larynx lowers)


PROFILES = {
    "neutral": Profile(0.0, 1.0, 1.00, 0.0, 0.0, 0.006, 0.04, 0.06, -2.0, 0.15, 0.00),
    "anger": Profile(3.5, 1.7, 1.12, 7.0, 3.0, 0.010, 0.07, 0.04, -4.0, 0.10, 0.03),
    "happiness": Profile(5.0, 1.8, 1.10, 4.0, 1.5, 0.006, 0.04, 0.12, 3.0, 0.10, 0.04),
    "sadness": Profile(-2.0, 0.6, 0.80, -6.0, -3.0, 0.009, 0.06, 0.16, -4.0, 0.30, -0.02),
    "fear": Profile(7.0, 1.4, 1.28, 1.0, 1.0, 0.022, 0.09, 0.10, 2.0, 0.25, 0.01),
    "disgust": Profile(-4.0, 1.3, 0.74, -3.0, -1.0, 0.008, 0.05, 0.06, -7.0, 0.25, -0.03),
    "boredom": Profile(-2.5, 0.4, 0.84, -4.0, -2.0, 0.006, 0.04, 0.10, -2.0, 0.20, -0.01),
}

# Within-class standard deviation of each parameter at difficulty 1 (scaled linearly).
SPREAD = Profile(4.0, 0.5, 0.22, 5.0, 2.5, 0.006, 0.03, 0.06, 4.0, 0.10, 0.03)

# Peterson & Barney style formants (Hz) of an adult male vocal tract.
VOWELS = np.array(
    [
        [730, 1090, 2440, 3400],  # a
        [530, 1840, 2480, 3500],  # e
        [270, 2290, 3010, 3700],  # i
        [570, 840, 2410, 3300],  # o
        [300, 870, 2240, 3300],  # u
        [500, 1500, 2500, 3500],  # schwa
    ],
    dtype=np.float64,
)
BANDWIDTHS = np.array([80.0, 100.0, 160.0, 250.0])

N_FFT, HOP = 512, 128


@dataclass(frozen=True)
class Speaker:
    id: str
    gender: str
    f0_hz: float
    formant_scale: float
    tilt_db: float
    breath: float
    jitter: float
    rate: float
    expressivity: float


def make_speakers(num_speakers: int, seed: int) -> list[Speaker]:
    """Speakers alternate female/male; each draws a voice of their own."""
    speakers = []
    for i in range(num_speakers):
        rng = np.random.default_rng([seed, 7, i])
        female = i % 2 == 0
        speakers.append(
            Speaker(
                id=f"s{i + 1:02d}",
                gender="f" if female else "m",
                f0_hz=float(rng.uniform(185, 225) if female else rng.uniform(100, 125)),
                formant_scale=float(rng.uniform(1.10, 1.20) if female else rng.uniform(0.94, 1.04)),
                tilt_db=float(rng.normal(0.0, 1.5)),
                breath=float(rng.uniform(0.0, 0.08) + (0.04 if female else 0.0)),
                jitter=float(rng.uniform(0.0, 0.006)),
                rate=float(rng.uniform(0.92, 1.08)),
                expressivity=float(rng.uniform(0.8, 1.2)),
            )
        )
    return speakers


def draw_params(emotion: str, speaker: Speaker, difficulty: float, rng) -> Profile:
    """One utterance's parameters: the speaker's share of the emotion's shift, plus spread."""
    neutral, target = asdict(PROFILES["neutral"]), asdict(PROFILES[emotion])
    values = {}
    for key, spread in asdict(SPREAD).items():
        shift = speaker.expressivity * (target[key] - neutral[key])
        values[key] = neutral[key] + shift + difficulty * spread * rng.normal()
    values["range"] = max(values["range"], 0.1)
    values["rate"] = max(values["rate"], 0.5)
    values["jitter"] = max(values["jitter"] + speaker.jitter, 0.0)
    values["shimmer"] = max(values["shimmer"], 0.0)
    values["breath"] = float(np.clip(values["breath"] + speaker.breath, 0.0, 0.6))
    values["pause"] = float(np.clip(values["pause"], 0.0, 0.6))
    return Profile(**values)


def _segments(duration_s: float, rate: float, pause_p: float, rng) -> list[tuple]:
    """Lay out (kind, start_s, end_s, vowel, stressed) segments: consonant + vowel syllables,
    grouped in words of 1-3 syllables, with pauses between some words."""
    segs, t, syllables_left = [], 0.05, 0
    while t < duration_s - 0.12:
        if syllables_left == 0:
            syllables_left = int(rng.integers(1, 4))
            if segs and rng.random() < pause_p:
                t += rng.uniform(0.12, 0.35)
                continue
        syl = rng.uniform(0.7, 1.3) / (4.5 * rate)
        kind = rng.choice(["fricative", "stop", "none"], p=[0.4, 0.3, 0.3])
        cons = {"fricative": rng.uniform(0.05, 0.11), "stop": rng.uniform(0.02, 0.05), "none": 0.0}[kind]
        if kind != "none":
            segs.append((kind, t, t + cons, None, False))
        vowel_end = min(t + max(syl - cons, 0.06) + cons, duration_s - 0.05)
        if vowel_end - (t + cons) > 0.03:
            segs.append(("vowel", t + cons, vowel_end, int(rng.integers(len(VOWELS))), rng.random() < 0.3))
        t = vowel_end
        syllables_left -= 1
    return segs


def _resonance(freqs: np.ndarray, centre: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Magnitude response of a two-pole resonator with unit gain at DC (Klatt 1980).

    freqs (K,), centre/bandwidth (N, R) -> (N, K), the product over the R resonators."""
    f = freqs[None, None, :]
    c, half_b = centre[..., None], bandwidth[..., None] / 2
    gain = (c**2 + half_b**2) / np.sqrt(((f - c) ** 2 + half_b**2) * ((f + c) ** 2 + half_b**2))
    return gain.prod(axis=1)


def synthesize(emotion: str, speaker: Speaker, duration_s: float, sample_rate: int, difficulty: float, rng):
    """Render one utterance; returns (wave float32 (T,), the drawn Profile). Every draw comes from ``rng``, in the
    order of the steps below."""
    p = draw_params(emotion, speaker, difficulty, rng)
    n = int(duration_s * sample_rate)
    frame_t = np.arange(n // HOP + 1) * HOP / sample_rate
    segs = _segments(duration_s, speaker.rate * p.rate, p.pause, rng)
    vowels = [s for s in segs if s[0] == "vowel"]
    f0 = _f0_contour(p, speaker, vowels, frame_t, np.arange(n) / sample_rate, duration_s, rng)
    voiced, fric = _excitation(segs, n, sample_rate)
    source, noise = _sources(f0, voiced, fric, p, sample_rate, rng)
    voiced_env, fric_env = _envelopes(p, speaker, vowels, frame_t, duration_s, sample_rate, rng)
    wave = _shape(source, voiced_env, n) + _shape(noise, fric_env, n)
    rms = np.sqrt(np.mean(wave[voiced > 0] ** 2)) if (voiced > 0).any() else np.sqrt(np.mean(wave**2))
    wave *= 10 ** ((p.level_db - 26.0) / 20) / max(rms, 1e-9)
    return wave, p


def _f0_contour(p: Profile, speaker: Speaker, vowels: list, frame_t: np.ndarray, sample_t: np.ndarray,
                duration_s: float, rng) -> np.ndarray:
    """F0 per sample (Hz): semitones around the speaker's base with declination, accents, a terminal and wander."""
    st = np.full(len(frame_t), p.f0_st) - 2.0 * frame_t / max(duration_s, 1e-3)
    for i, (_, a, b, _, stressed) in enumerate(vowels):
        mid, width = (a + b) / 2, max(b - a, 0.04)
        height = (rng.uniform(1.5, 3.5) if stressed else rng.uniform(0.0, 1.0)) * 2.0 * p.range
        st += height * np.exp(-0.5 * ((frame_t - mid) / (0.4 * width)) ** 2)
        if i == len(vowels) - 1:
            st += p.final_st * np.clip((frame_t - a) / width, 0.0, 1.0)
    wander = np.cumsum(rng.normal(0, 0.08, len(frame_t)))
    st += (wander - wander.mean()) * p.range
    f0 = speaker.f0_hz * 2.0 ** (np.interp(sample_t, frame_t, st) / 12.0)
    return np.clip(f0, 50.0, 600.0)


def _excitation(segs: list, n: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) voicing (with 15 ms ramps) and frication envelopes of the segments."""
    voiced, fric = np.zeros(n), np.zeros(n)
    ramp = int(0.015 * sample_rate)
    for kind, a, b, _, stressed in segs:
        i, j = int(a * sample_rate), int(b * sample_rate)
        if kind == "vowel":
            env = np.ones(j - i) * (1.4 if stressed else 1.0)
            r = min(ramp, (j - i) // 2)
            env[:r] *= np.linspace(0, 1, r)
            env[j - i - r :] *= np.linspace(1, 0, r)
            voiced[i:j] = env
        elif kind == "fricative":
            fric[i:j] = np.hanning(j - i) * 0.5
        else:  # a stop: closure silence then a short burst
            burst = min(int(0.012 * sample_rate), j - i)
            fric[j - burst : j] = np.hanning(burst) * 0.8
    return voiced, fric


def _sources(f0: np.ndarray, voiced: np.ndarray, fric: np.ndarray, p: Profile, sample_rate: int,
             rng) -> tuple[np.ndarray, np.ndarray]:
    """The voiced source (glottal pulses at each period of the contour, displaced by jitter, scaled by shimmer, with
    breath noise) and the frication noise, (n,) each."""
    n = len(f0)
    phase = np.cumsum(f0 / sample_rate)
    pulse_at = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1
    pulse_at = pulse_at[voiced[pulse_at] > 0]
    period = sample_rate / f0[pulse_at]
    pos = pulse_at + p.jitter * period * rng.normal(size=pulse_at.size)
    amp = voiced[pulse_at] * np.clip(1.0 + p.shimmer * rng.normal(size=pulse_at.size), 0.2, 2.0)
    amp *= np.sqrt(period)  # equal energy per unit time at any F0
    source = np.zeros(n + 2)
    base = np.clip(np.floor(pos).astype(int), 0, n - 1)
    frac = pos - np.floor(pos)
    np.add.at(source, base, amp * (1 - frac))
    np.add.at(source, base + 1, amp * frac)
    source = source[:n] + p.breath * 3.0 * voiced * rng.normal(size=n)
    return source, fric * rng.normal(size=n)


def _envelopes(p: Profile, speaker: Speaker, vowels: list, frame_t: np.ndarray, duration_s: float, sample_rate: int,
               rng) -> tuple[np.ndarray, np.ndarray]:
    """Spectral envelopes per frame: moving formants for voicing (T', K), a high resonance for frication (1, K)."""
    n_frames = len(frame_t)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    scale = speaker.formant_scale * (1.0 + p.formant)
    centres = np.array([(a + b) / 2 for _, a, b, _, _ in vowels] or [duration_s / 2])
    table = VOWELS[[v for *_, v, _ in vowels] or [5]] * scale
    formants = np.stack([np.interp(frame_t, centres, table[:, k]) for k in range(4)], axis=1)
    # Formants move slowly: evaluate the envelope every 4th frame and interpolate between.
    coarse = np.arange(0, n_frames + 3, 4).clip(max=n_frames - 1)
    bandwidths = np.broadcast_to(BANDWIDTHS * (1.0 + 2.0 * p.breath), (coarse.size, 4))
    octaves = np.log2(np.maximum(freqs, 50.0) / 500.0)
    tilt_db = -6.0 * np.maximum(octaves, 0) + (p.tilt_db + speaker.tilt_db) * octaves
    env = _resonance(freqs, formants[coarse], bandwidths) * 10 ** (tilt_db / 20)[None, :]
    at = np.arange(n_frames) / 4
    lo = np.floor(at).astype(int)
    w = (at - lo)[:, None]
    voiced_env = env[lo] * (1 - w) + env[np.minimum(lo + 1, coarse.size - 1)] * w
    fric_env = _resonance(freqs, np.array([[rng.uniform(3500, 6000)]]), np.array([[2500.0]])) * 0.3
    return voiced_env, fric_env


def _shape(x: np.ndarray, env: np.ndarray, n: int) -> np.ndarray:
    """``x`` (n,) filtered frame by frame by ``env`` (T', K) in the STFT domain."""
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    spec = torch.stft(torch.from_numpy(x), N_FFT, HOP, window=window, return_complex=True)
    spec = spec * torch.from_numpy(np.ascontiguousarray(env.T))
    return torch.istft(spec, N_FFT, HOP, window=window, length=n).numpy()


def add_noise(wave: np.ndarray, snr_db: float, rng) -> np.ndarray:
    """Add pink-ish background noise at ``snr_db`` relative to the signal's power."""
    pink = pink_noise(wave.size, rng)
    power = np.mean(wave**2)
    return wave + pink * np.sqrt(power / 10 ** (snr_db / 10) / max(np.mean(pink**2), 1e-12))


class SyntheticCorpus:
    """The built-in corpus; ``utterances()`` generates it on first use and reads it after.

    Args:
        root: cache folder; the corpus goes to ``root/synthetic-<hash>/``.
        num_speakers: speakers, alternating female and male (default 10).
        utterances_per_speaker: recordings per speaker, shared among classes by ``class_proportions``.
        emotions: which emotions to render (default all seven).
        class_proportions: relative class frequencies (label -> weight, unlisted classes 1); null is balanced.
        duration_s: [min, max] utterance length in seconds.
        difficulty: 0 to 1, how much classes overlap (0.5 by default).
        noise_snr_db: background noise level; null for none.
        channel_hz: ``[low, high]`` band of a recording channel (a 4th-order Butterworth band-pass, like
            a telephone's [300, 3400]); null for a flat channel. With ``level_db`` and ``noise_snr_db``
            it sets a corpus's recording conditions, for cross-corpus studies (``data=multi``).
        level_db: gain applied to every file (the limiter still keeps peaks below full scale).
        sample_rate: rate the wav files are written at.
        seed: everything follows from it.

    >>> corpus = SyntheticCorpus("/tmp/ser-doc", num_speakers=3, utterances_per_speaker=7)
    >>> len(corpus.utterances())
    21
    """

    def __init__(
        self,
        root: str,
        num_speakers: int = 10,
        utterances_per_speaker: int = 70,
        emotions: list[str] | tuple[str, ...] = EMOTIONS,
        class_proportions: dict | None = None,
        duration_s: tuple[float, float] = (1.0, 5.0),
        difficulty: float = 0.5,
        noise_snr_db: float | None = 35.0,
        sample_rate: int = 16000,
        seed: int = 0,
        channel_hz: tuple[float, float] | None = None,
        level_db: float = 0.0,
    ):
        unknown = sorted(set(emotions) - set(PROFILES))
        if unknown:
            raise ValueError(f"data.corpus.emotions: unknown {unknown}; available: {list(PROFILES)}")
        if class_proportions:
            extra = sorted(set(class_proportions) - set(emotions))
            if extra:
                raise ValueError(f"data.corpus.class_proportions: {extra} not among emotions {list(emotions)}")
        if num_speakers < 3:
            raise ValueError("data.corpus.num_speakers: need at least 3 for train/val/test speakers")
        if not 0.0 <= difficulty <= 2.0:
            raise ValueError(f"data.corpus.difficulty: {difficulty} is outside [0, 2]")
        lo, hi = duration_s
        if not 0.2 <= lo <= hi:
            raise ValueError(f"data.corpus.duration_s: need 0.2 <= min <= max, got {list(duration_s)}")
        self.settings = {
            "num_speakers": int(num_speakers),
            "utterances_per_speaker": int(utterances_per_speaker),
            "emotions": list(emotions),
            "class_proportions": dict(class_proportions) if class_proportions else None,
            "duration_s": [float(lo), float(hi)],
            "difficulty": float(difficulty),
            "noise_snr_db": None if noise_snr_db is None else float(noise_snr_db),
            "sample_rate": int(sample_rate),
            "seed": int(seed),
            "version": 2,  # bump when the synthesis changes, so old caches are not reused
        }
        if channel_hz is not None:  # recording conditions enter the settings (and the hash) only when set
            low, high = (float(x) for x in channel_hz)
            if not 0 < low < high < sample_rate / 2:
                raise ValueError(f"data.corpus.channel_hz: need 0 < low < high < {sample_rate / 2:g}, "
                                 f"got {list(channel_hz)}")
            self.settings["channel_hz"] = [low, high]
        if level_db:
            self.settings["level_db"] = float(level_db)
        digest = hashlib.sha1(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:10]
        self.root = root
        self.dir = Path(root).expanduser() / f"synthetic-{digest}"

    def class_counts(self) -> dict[str, int]:
        """Utterances per class and speaker, largest remainder rounding of the proportions."""
        emotions = self.settings["emotions"]
        weights = self.settings["class_proportions"] or {e: 1.0 for e in emotions}
        w = np.array([float(weights.get(e, 1.0)) for e in emotions])  # unlisted classes weigh 1
        share = w / w.sum() * self.settings["utterances_per_speaker"]
        counts = np.floor(share).astype(int)
        for i in np.argsort(-(share - counts))[: self.settings["utterances_per_speaker"] - counts.sum()]:
            counts[i] += 1
        return dict(zip(emotions, counts.tolist()))

    name = "synthetic"

    def scan(self) -> tuple[list[Utterance], list[dict]]:
        """Same contract as the real adapters: (utterances, problems); generated audio has none."""
        return self.utterances(), []

    def utterances(self) -> list[Utterance]:
        if not (self.dir / "manifest.csv").exists():
            self.generate()
        with open(self.dir / "manifest.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return [
            Utterance(
                path=str(self.dir / r.pop("path")),
                label=r.pop("label"),
                speaker=r.pop("speaker"),
                extras={k: (v if k == "gender" else float(v)) for k, v in r.items()},
            )
            for r in rows
        ]

    def generate(self) -> None:
        """Render every utterance into a temporary folder, then move it into place at once,
        so that parallel jobs never see half a corpus."""
        s = self.settings
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=self.dir.parent))
        (tmp / "wav").mkdir()
        speakers = make_speakers(s["num_speakers"], s["seed"])
        counts = self.class_counts()
        fields = ["path", "label", "speaker", "gender", "duration_s"] + list(asdict(SPREAD))
        rows = []
        log.info("generating the synthetic corpus (%d utterances) in %s", s["num_speakers"] * sum(counts.values()), self.dir)
        for si, spk in enumerate(speakers):
            for ei, emotion in enumerate(s["emotions"]):
                for k in range(counts[emotion]):
                    rng = np.random.default_rng([s["seed"], si, ei, k])
                    duration = float(rng.uniform(*s["duration_s"]))
                    wave, params = synthesize(emotion, spk, duration, s["sample_rate"], s["difficulty"], rng)
                    if s.get("channel_hz"):
                        wave = band_pass(wave, *s["channel_hz"], s["sample_rate"])
                    if s["noise_snr_db"] is not None:
                        wave = add_noise(wave, s["noise_snr_db"], rng)
                    wave = wave * 10 ** (s.get("level_db", 0.0) / 20)
                    peak = np.abs(wave).max()
                    if peak > 0.99:  # a limiter, not a normaliser: loudness differences stay
                        wave *= 0.99 / peak
                    rel = f"wav/{spk.id}_{emotion}_{k:03d}.wav"
                    sf.write(tmp / rel, wave.astype(np.float32), s["sample_rate"], subtype="PCM_16")
                    meta = {"path": rel, "label": emotion, "speaker": spk.id, "gender": spk.gender}
                    meta["duration_s"] = round(duration, 4)
                    rows.append(meta | {key: round(v, 5) for key, v in asdict(params).items()})
        with open(tmp / "manifest.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "settings.json").write_text(json.dumps(s, indent=2))
        try:
            os.rename(tmp, self.dir)
        except OSError:  # another job finished first: theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
