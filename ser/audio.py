"""Audio loading: soundfile decodes, soxr resamples, and every file is checked.

A bad file raises ``AudioError`` naming the file and the reason, so a run never trains on
silence, NaN or a truncated download without saying so.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

PCM16 = 32768.0  # 16-bit audio as floats: int / 32768
SILENCE_PEAK = 1e-4  # about -80 dBFS: nothing a microphone records from a speaker is this quiet
RESAMPLER = "soxr-hq"  # part of the audio cache key: another resampler gives other samples
# libsndfile's header log: "data : 97656 (should be 48806)" when the data chunk promises more bytes than the file holds
_SHORT_CHUNK = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


class AudioError(ValueError):
    """A file that cannot be used, with the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def read_audio(path: str | Path, source=None) -> tuple[np.ndarray, int]:
    """Decode a file to float32 (T, C). libsndfile reads the container from the content, so
    a WAV saved as ``.flac`` (or the reverse) still decodes. ``source``: a callable giving what to read
    instead of the file (a file object, e.g. a dataset row's bytes); ``path`` then only names it."""
    if source is not None:
        try:
            opened = source()
        except (OSError, KeyError, IndexError) as err:
            raise AudioError(path, f"unreadable ({err})") from err
        if isinstance(opened, io.BytesIO) and not opened.getbuffer().nbytes:
            raise AudioError(path, "empty audio (0 bytes)")
    else:
        path = Path(path)
        if not path.is_file():
            raise AudioError(path, "file not found")
        if path.stat().st_size == 0:
            raise AudioError(path, "empty file (0 bytes)")
        opened = str(path)
    try:
        with sf.SoundFile(opened) as f:
            data, rate, header = f.read(dtype="float32", always_2d=True), f.samplerate, f.extra_info
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(path, f"unreadable audio ({err}); re-export it as WAV or FLAC") from err
    if m := _SHORT_CHUNK.search(header):
        promised, present = int(m.group(1)), int(m.group(2))
        # 0xFFFFFFFF (or 0) is how streamed WAVs say "size unknown": not a truncation
        if present < promised < 0xFFFFFFF0:
            share = present / promised
            raise AudioError(path, f"truncated: the header promises {promised} bytes of audio but the file holds "
                                   f"{present} ({share:.0%}), so it is a copy cut short; copy it again")
    return data, rate


def beyond_full_scale(path: str | Path) -> bool:
    """True for a float WAV/FLAC whose samples exceed full scale (|x| > 1), as two of TESS's files do.

    Integer formats cannot; their resampled waves may overshoot 1 a little, which is not the file's fault.
    """
    try:
        if sf.info(str(path)).subtype not in ("FLOAT", "DOUBLE"):
            return False
        return bool(np.abs(read_audio(path)[0]).max() > 1.0)
    except (AudioError, sf.LibsndfileError, RuntimeError):
        return False


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited resampling of a mono float32 wave (soxr, high quality) from any rate to ``target``.

    >>> resample(np.ones(24414, np.float32), 24414, 16000).shape
    (16000,)
    """
    if rate == target:
        return wave
    return soxr.resample(np.ascontiguousarray(wave), rate, target, quality="HQ").astype(np.float32, copy=False)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) noise with a 1/f power spectrum (not normalised), drawn from ``rng``."""
    size = 1 << (n - 1).bit_length()  # a power of two keeps the FFT fast
    white = rng.normal(size=size)
    return np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(size // 2 + 1) + 1.0), n=size)[:n]


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


def load_audio(path: str | Path, sample_rate: int = 16000, min_duration_s: float = 0.0, source=None) -> torch.Tensor:
    """Load a file as a mono float32 wave (T,) at ``sample_rate``.

    Channels are averaged; any source rate is resampled (``resample``: soxr, band-limited).
    Raises ``AudioError`` for a file that is missing, empty, unreadable, truncated (the header promises
    more audio than the file holds), holds no samples, NaN or inf, is silent, or is shorter than
    ``min_duration_s``. ``source``: as ``read_audio`` (audio that is not a file of its own).
    """
    data, rate = read_audio(path, source)
    if data.shape[0] == 0:
        raise AudioError(path, "no samples (zero-length audio)")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or inf samples")
    wave = torch.from_numpy(resample(data.mean(axis=1), rate, sample_rate))
    if wave.abs().max() < SILENCE_PEAK:
        raise AudioError(path, f"silent (peak below {SILENCE_PEAK:g})")
    if wave.numel() < min_duration_s * sample_rate:
        raise AudioError(path, f"{wave.numel() / sample_rate:.3f} s is shorter than data.min_duration_s={min_duration_s}")
    return wave.contiguous()


class AudioCache:
    """Decoded, resampled waves in an on-disk store (``ser.data.store.ArrayStore``), keyed by path, size,
    modification time, rate and resampler, so a later run (or fold, or sweep job, or rank) never decodes
    or resamples a file again, and a run holds a handle per file (``Stored``) instead of its samples:
    audio is read per batch. Kept exactly as decoded: int16 where that is lossless (16-bit files at the
    target rate, half the bytes), float32 otherwise (resampled or float sources).

    Args:
        folder: the cache folder (``data.cache_dir``); the store is ``<folder>/store/audio-<rate>-<resampler>``.
        sample_rate: target rate.
        min_duration_s: as ``load_audio``; checked again on every read.
    """

    def __init__(self, folder: str | Path, sample_rate: int = 16000, min_duration_s: float = 0.0):
        from ser.data.store import ArrayStore

        self.folder, self.sample_rate, self.min_duration_s = Path(folder).expanduser(), sample_rate, min_duration_s
        self.store = ArrayStore(self.folder / "store" / f"audio-{sample_rate}-{RESAMPLER}")

    def key(self, path: Path, source=None) -> str:
        if source is not None:  # not a file: its name and the content's own key (a dataset's fingerprint)
            ident = f"{path}|{getattr(source, 'key', '')}|{self.sample_rate}|{RESAMPLER}"
        else:
            stat = path.stat()
            ident = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.sample_rate}|{RESAMPLER}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def load(self, path: str | Path, source=None):
        """(a ``Stored`` handle of the decoded wave (T,), the content digest of its samples). ``source``: as
        ``read_audio`` (audio that is not a file of its own)."""
        from ser.data.store import Stored

        path = Path(path) if source is None else str(path)
        if source is None and not path.is_file():
            raise AudioError(path, "file not found")
        key = self.key(path, source)
        entry = self.store.check(key)
        if entry is None or not (entry.meta or {}).get("content"):
            wave = load_audio(path, self.sample_rate, self.min_duration_s, source)
            meta = {"content": content_digest(wave), "path": str(path)}
            samples = wave.numpy()
            scaled = samples.astype(np.float64) * PCM16
            if -PCM16 <= scaled.min() and scaled.max() < PCM16 and np.array_equal(scaled, np.round(scaled)):
                samples, meta["scale"] = scaled.astype(np.int16), PCM16  # lossless: float32(int16) / 32768 is exact
            entry = self.store.put(key, samples, meta)
        if entry.shape[0] < self.min_duration_s * self.sample_rate:
            raise AudioError(path, f"{entry.shape[0] / self.sample_rate:.3f} s is shorter than data.min_duration_s")
        return Stored(self.store, key, entry.shape, entry.dtype, entry.meta.get("scale")), entry.meta["content"]


def content_digest(wave: torch.Tensor) -> str:
    """A hash of decoded audio: equal for byte-identical recordings under two names."""
    return hashlib.sha1(wave.contiguous().numpy().tobytes()).hexdigest()
