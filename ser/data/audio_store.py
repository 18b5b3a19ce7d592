"""Decoded audio in the on-disk store (``ser.data.store``): every file decoded and resampled once, then read
back per batch by every run, fold, sweep job and rank."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ser.audio import PCM16, RESAMPLER, AudioError, content_digest, load_audio
from ser.data.store import ArrayStore, Stored


class AudioCache:
    """Decoded, resampled waves in an on-disk store (``ArrayStore``), keyed by path, size,
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
