"""A frozen upstream's output, computed once per utterance and kept on disk (or, without a folder, in memory).

A frozen upstream (``features=ge2e`` or ``ssl``, ``features.freeze=true``) is a fixed function of the
audio, so running it every epoch and fold would repeat the same work: its ``encode`` output is
computed once, in length-sorted batches on the model's device, and kept per utterance, in float16
(half the memory; rounding ~1e-3 relative). On disk it goes into an ``ArrayStore``
(``ser.data.store``: append-only shards) per upstream ``cache_key()`` (its class, a fingerprint of its
weights and its settings), keyed by a digest of the decoded audio, so later folds, runs and sweep jobs
read it back instead of computing it, and a run holds only a handle per utterance (``Stored``): frames
are read per batch, so memory stays flat as the corpus grows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ser import rundir
from ser.audio import content_digest
from ser.data.store import ArrayStore, Stored, materialize

log = logging.getLogger(__name__)
STORE_DTYPE = torch.float16


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
        rundir.atomic(path, lambda tmp: torch.save(value, tmp))  # parallel jobs never read half a file


class UpstreamCache:
    """Args:
    folder: the disk store (``data.feature_cache_dir``); None keeps results in memory only.
    batch_seconds: audio per batch when computing (padded).
    batch_mb: and at most this much of the upstream's activations per batch (its
        ``activation_bytes_per_sample``, where it says): a base-size SSL model's first convolution alone
        outputs 512 channels for every 5 input samples, 6.5 MB per second of audio in float32 (with its norm
        and activation beside it, about 20 MB), so memory, not seconds of audio, is the bound there.
    """

    def __init__(self, folder: str | Path | None = None, batch_seconds: float = 160.0, batch_mb: float = 512.0):
        self.folder = Path(folder).expanduser() if folder else None
        self.stores: dict[str, ArrayStore] = {}
        self.batch_seconds, self.batch_mb = batch_seconds, batch_mb

    def batch_samples(self, frontend) -> int:
        """Padded input samples per extraction batch: ``batch_seconds`` of audio, fewer where the upstream's
        activations would pass ``batch_mb``."""
        limit = self.batch_seconds * frontend.sample_rate
        per_sample = getattr(frontend, "activation_bytes_per_sample", 0)
        return int(min(limit, self.batch_mb * 2**20 / per_sample) if per_sample else limit)

    def store(self, key: str) -> ArrayStore | None:
        if self.folder is None:
            return None
        if key not in self.stores:
            self.stores[key] = ArrayStore(self.folder / "store" / key)
        return self.stores[key]

    def features(self, frontend, waves: list, device: torch.device | str = "cpu", digests: list[str] | None = None) -> list:
        """``frontend.encode`` of every wave, (F, T'_i) each, in ``STORE_DTYPE``: a ``Stored`` handle per
        utterance (read per batch) with a disk store, tensors without one; computed where not stored yet.
        ``waves``: tensors or ``Stored`` handles; ``digests``: their content digests where known (else computed)."""
        store = self.store(frontend.cache_key())
        digests = digests or [content_digest(materialize(w)) for w in waves]
        out: list = [None] * len(waves)
        if store is not None:
            store.refresh()
            for i, d in enumerate(digests):
                entry = store.check(d)
                out[i] = Stored(store, d, entry.shape, entry.dtype) if entry is not None else None
        missing = sorted((i for i, x in enumerate(out) if x is None), key=lambda i: waves[i].numel())
        found = len(waves) - len(missing)
        log.info("%s features: %d of %d utterances from the cache%s%s", type(frontend).__name__, found, len(waves),
                 f" ({store.folder})" if store is not None else "",
                 f", computing {len(missing)} on {device}" if missing else "")
        if missing:
            for i, feats in self._compute(frontend, [waves[i] for i in missing], device, missing):
                if store is None:
                    out[i] = feats
                    continue
                array = feats.numpy()
                store.put(digests[i], array)
                out[i] = Stored(store, digests[i], array.shape, array.dtype.str)
        return out

    @torch.no_grad()
    def _compute(self, frontend, waves: list[torch.Tensor], device, index: list[int]):
        """(index, features) pairs, batched by length (the waves come sorted by length)."""
        was_training = frontend.training
        frontend.eval().to(device)
        budget = self.batch_samples(frontend)
        bar = tqdm(total=len(waves), desc=f"{type(frontend).__name__} features", unit="utt", leave=False)
        start = 0
        while start < len(waves):
            # As many as fit the budget at the padded length of the longest (the last, sorted).
            stop = start + 1
            while stop < len(waves) and (stop + 1 - start) * waves[stop].numel() <= budget:
                stop += 1
            chunk = [materialize(w) for w in waves[start:stop]]
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


class Upstream:
    """A frozen upstream on the device it runs on, with the cache it computes into: what a data module serves
    instead of waves (``SERDataModule.use_upstream``). ``Upstream.of`` gives None for a frontend that is not
    cached (log-mel, MFCC, an upstream being fine-tuned).

    Args:
        frontend: the upstream (``ser.features``), with ``encode``, ``cache_key()`` and ``hop_length``.
        device: where ``encode`` runs.
        cache: the ``UpstreamCache`` (memory, or a disk store) its output goes into.
    """

    def __init__(self, frontend, device, cache: UpstreamCache):
        self.frontend, self.device, self.cache = frontend, device, cache
        self.key = frontend.cache_key()
        self.frames_per_sample = 1 / frontend.hop_length

    @classmethod
    def of(cls, frontend, device, cache: UpstreamCache) -> Upstream | None:
        return cls(frontend, device, cache) if getattr(frontend, "cacheable", False) else None

    def encode(self, waves: list, digests: list[str] | None = None) -> list:
        """``frontend.encode`` of every wave (tensors or stored handles), (F, T'_i) each (``UpstreamCache.features``)."""
        return self.cache.features(self.frontend, waves, self.device, digests)
