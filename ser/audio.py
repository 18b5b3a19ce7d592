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
RESAMPLER = "soxr-hq"  # part of the audio store's key: another resampler gives other samples
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


def content_digest(wave: torch.Tensor) -> str:
    """A hash of decoded audio: equal for byte-identical recordings under two names."""
    return hashlib.sha1(wave.contiguous().numpy().tobytes()).hexdigest()
