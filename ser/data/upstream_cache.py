"""A frozen upstream's output, computed once per utterance and kept in memory and on disk.

A frozen upstream (``features=ge2e`` or ``ssl``, ``features.freeze=true``) is a fixed function of the
audio, so running it every epoch and fold would repeat the same work: its ``encode`` output is
computed once, in length-sorted batches on the model's device, and kept per utterance, in float16
(half the memory; rounding ~1e-3 relative). On disk, files are keyed by the upstream's
``cache_key()`` (its class, a fingerprint of its weights and its settings) and a digest of the
decoded audio, so later folds, runs and sweep jobs read them back instead of computing them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)
STORE_DTYPE = torch.float16


def audio_digest(wave: torch.Tensor) -> str:
    return hashlib.sha1(wave.contiguous().numpy().tobytes()).hexdigest()


class FeatureStore:
    """One tensor per utterance on disk, at ``<folder>/<key>/<digest[:2]>/<digest>.pt``, written atomically.

    ``key`` names what was computed (and with which settings); ``digest`` the decoded audio. None as
    the folder stores nothing.
    """

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder).expanduser() if folder else None

    def get(self, key: str, digest: str) -> torch.Tensor | None:
        path = self.folder / key / digest[:2] / f"{digest}.pt" if self.folder else None
        return torch.load(path, map_location="cpu", weights_only=True) if path and path.is_file() else None

    def put(self, key: str, digest: str, value: torch.Tensor) -> None:
        if not self.folder:
            return
        path = self.folder / key / digest[:2] / f"{digest}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(value, tmp)
        os.replace(tmp, path)  # atomic: parallel jobs never read half a file


class UpstreamCache:
    """Args:
    folder: the disk cache (``data.feature_cache_dir``); None keeps results in memory only.
    batch_seconds: audio per batch when computing (padded), which bounds memory on the device.
    """

    def __init__(self, folder: str | Path | None = None, batch_seconds: float = 160.0):
        self.store = FeatureStore(folder)
        self.batch_seconds = batch_seconds

    def features(self, frontend, waves: list[torch.Tensor], device: torch.device | str = "cpu") -> list[torch.Tensor]:
        """``frontend.encode`` of every wave, (F, T'_i) each, in ``STORE_DTYPE``: from disk where cached."""
        key = frontend.cache_key()
        digests = [audio_digest(w) for w in waves]
        out: list[torch.Tensor | None] = [self.store.get(key, d) for d in digests]
        missing = sorted((i for i, x in enumerate(out) if x is None), key=lambda i: waves[i].numel())
        found = len(waves) - len(missing)
        log.info("%s features: %d of %d utterances from the cache%s", type(frontend).__name__, found, len(waves),
                 f", computing {len(missing)} on {device}" if missing else "")
        if missing:
            for i, feats in self._compute(frontend, [waves[i] for i in missing], device, missing):
                out[i] = feats
                self.store.put(key, digests[i], feats)
        return out

    @torch.no_grad()
    def _compute(self, frontend, waves: list[torch.Tensor], device, index: list[int]):
        """(index, features) pairs, batched by length (the waves come sorted by length)."""
        was_training = frontend.training
        frontend.eval().to(device)
        rate = frontend.sample_rate
        bar = tqdm(total=len(waves), desc=f"{type(frontend).__name__} features", unit="utt", leave=False)
        start = 0
        while start < len(waves):
            # As many as fit the budget at the padded length of the longest (the last, sorted).
            stop = start + 1
            while stop < len(waves) and (stop + 1 - start) * waves[stop].numel() <= self.batch_seconds * rate:
                stop += 1
            chunk = waves[start:stop]
            lengths = torch.tensor([w.numel() for w in chunk])
            batch = torch.zeros(len(chunk), int(lengths.max()))
            for row, w in zip(batch, chunk):
                row[: w.numel()] = w
            feats, frames = frontend.encode(batch.to(device), lengths.to(device))
            for j, n in enumerate(frames.tolist()):
                yield index[start + j], feats[j, :, :n].to("cpu", STORE_DTYPE).clone()
            bar.update(len(chunk))
            start = stop
        bar.close()
        frontend.train(was_training)
