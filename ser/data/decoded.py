"""A corpus read once: the adapter's listing, the labels kept, every file decoded (into the audio store).

This is the ``data`` config and the fold-independent part of the data module (``SERDataModule`` serves
folds of it): what ``ser.inspect``, ``ser.baselines`` and ``ser.diagnose`` need to know about a corpus
before any fold exists, and a frozen upstream's output for every utterance, computed once. Bad files
stop the load naming the file, or with ``on_bad_file=skip`` are listed in ``skipped``; nothing is
dropped silently.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ser.audio import AudioError, beyond_full_scale, content_digest, load_audio
from ser.corpora.labels import canonical, ordered
from ser.corpora.multi import MultiCorpus, corpus_of
from ser.corpora.utterance import Utterance
from ser.data.audio_store import AudioCache
from ser.data.store import materialize, resident
from ser.data.upstream_cache import Upstream, UpstreamCache

log = logging.getLogger(__name__)


def duplicate_groups(utterances: list[Utterance], digests: list[str]) -> list[list[str]]:
    """Paths of files whose decoded audio is identical, in groups of two or more."""
    by = {}
    for u, d in zip(utterances, digests):
        by.setdefault(d, []).append(u.path)
    return [sorted(paths) for paths in by.values() if len(paths) > 1]


class DecodedCorpus:
    """A corpus with its labels selected and merged and its audio decoded once: the ``data`` config.

    Args:
        corpus: the corpus adapter (``ser.corpora``, Hydra ``_partial_``), called with ``root`` and ``options``;
            ``scan()`` lists utterances and problems.
        root: the corpus folder (``data.root``).
        sample_rate: every file is resampled to this rate.
        labels: classes to keep, in this order; None keeps every class (with several corpora, the
            classes every corpus has).
        merge: label -> label map applied before selection (``{calm: neutral}``).
        min_duration_s: shorter files are bad files.
        on_bad_file: ``error`` (stop, naming the file) or ``skip`` (leave it out, listed in ``skipped``).
        cache_dir: the audio store's folder (``ser.data.audio_store.AudioCache``): runs hold handles read per
            batch; None decodes into memory every run.
        feature_cache_dir: a frozen upstream's output is kept here across runs (``encoded``); None keeps it
            in memory only.
        resident_mb: decoded audio (float32), or a frozen upstream's stored output, of at most this size is held
            in memory once read from its store; more is read per batch (``ser.data.store.resident``).
        options: the adapter's own (``data.corpora`` for ``data=multi``; ``data.columns`` and ``data.label_map``
            for ``data=hf``).
    """

    def __init__(self, corpus: Callable[..., object], root: str | None, sample_rate: int = 16000,
                 labels: list[str] | None = None, merge: dict[str, str] | None = None, min_duration_s: float = 0.1,
                 on_bad_file: str = "error", cache_dir: str | None = None, feature_cache_dir: str | None = None,
                 resident_mb: float = 1024, **options):
        if on_bad_file not in ("error", "skip"):
            raise ValueError(f"data.on_bad_file must be 'error' or 'skip', got {on_bad_file!r}")
        self.adapter = corpus(root=root, **{k: v for k, v in options.items() if v is not None})
        self.sample_rate, self.min_duration_s, self.on_bad_file = sample_rate, min_duration_s, on_bad_file
        self.merge = {canonical(k): canonical(v) for k, v in (merge or {}).items()}
        self.labels = [canonical(x) for x in labels] if labels else None
        self.cache = AudioCache(cache_dir, sample_rate, min_duration_s) if cache_dir else None
        self.upstream_cache = UpstreamCache(feature_cache_dir)
        self.resident_mb = resident_mb
        # the corpus of every utterance, in data.corpora's order; the batch's ``corpora`` index into it
        self.corpus_names: list[str] = list(getattr(self.adapter, "names", [self.adapter.name]))
        self.utterances: list[Utterance] = []
        self._waves: list = []  # decoded audio: handles into the audio store, or tensors (``audio``, ``stored``)
        self._encoded: tuple[str, list] | None = None  # (upstream key, its output per utterance) (``encoded``)
        self.digests: list[str] = []  # content hash of each utterance's decoded audio
        self.class_names: list[str] = []
        self.speakers: list[str] = []  # sorted speaker ids
        self.skipped: list[dict] = []
        self.out_of_range: list[str] = []  # files whose float samples exceed full scale
        self.duplicates: list[list[str]] = []  # groups of files with identical decoded audio

    def __len__(self) -> int:
        return len(self.utterances)

    def audio(self, i: int) -> torch.Tensor:
        """Utterance ``i``'s decoded wave (T,), float32: read from the audio store unless held in memory."""
        return materialize(self._waves[i])

    def stored(self, i: int):
        """Utterance ``i``'s audio unread: a store handle (``ser.data.store.Stored``, with ``numel()``) or a tensor,
        for datasets and babble pools that read per item."""
        return self._waves[i]

    def duration(self, i: int) -> float:
        """Utterance ``i``'s length in seconds (without reading it)."""
        return self._waves[i].numel() / self.sample_rate

    def encoded(self, upstream: Upstream) -> list:
        """A frozen upstream's output for every utterance, (F, T'_i) each, computed once (``upstream.encode``: on
        disk for later runs) and held for this corpus's life, in memory up to ``resident_mb``."""
        if self._encoded is None or self._encoded[0] != upstream.key:
            handles = [self.stored(i) for i in range(len(self))]
            what = f"{type(upstream.frontend).__name__} features"
            self._encoded = upstream.key, resident(upstream.encode(handles, self.digests), self.resident_mb, what)
        return self._encoded[1]

    def load(self) -> None:
        """List the corpus, select and merge labels, decode every file once. Idempotent."""
        if self.utterances:
            return
        utterances, problems = self.adapter.scan()
        if problems and self.on_bad_file == "error":
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise AudioError(first["path"], f"{first['reason']}{more}. Fix or remove it, or set data.on_bad_file=skip")
        self.skipped = list(problems)
        for u in utterances:
            u.label = self.merge.get(u.label, u.label)
        utterances = self._select(utterances)
        waves = []
        for u in tqdm(utterances, desc="decoding audio", unit="file", leave=False):
            try:
                if self.cache:  # a handle into the on-disk store, read per batch
                    wave, digest = self.cache.load(u.path, u.source)
                else:
                    wave = load_audio(u.path, self.sample_rate, self.min_duration_s, u.source)
                    digest = content_digest(wave)
            except AudioError as err:
                if self.on_bad_file == "error":
                    raise AudioError(err.path, f"{err.reason}. Fix or remove it, or set data.on_bad_file=skip") from err
                self.skipped.append({"path": err.path, "reason": err.reason})
                continue
            self.utterances.append(u)
            waves.append(wave)
            self.digests.append(digest)
        self._waves = resident(waves, self.resident_mb, "decoded audio")
        self.speakers = sorted({u.speaker for u in self.utterances})
        self.out_of_range = [u.path for u in self.utterances if beyond_full_scale(u.path)]
        if self.out_of_range:
            log.warning("%d files have samples beyond full scale (float audio above 1.0), kept as they are: %s",
                        len(self.out_of_range), self.out_of_range[:5])
        self.duplicates = duplicate_groups(self.utterances, self.digests)
        if self.duplicates:
            log.warning("%d groups of identical recordings under different names (the same decoded audio): %s",
                        len(self.duplicates), self.duplicates[:3])
        if self.skipped:
            log.warning("skipped %d bad files (data.on_bad_file=skip): %s", len(self.skipped), self.skipped[:5])

    def _select(self, utterances: list[Utterance]) -> list[Utterance]:
        """The utterances of the classes kept (``labels``, or with several corpora those every corpus has)."""
        present = ordered(u.label for u in utterances)
        if self.labels:
            unknown = sorted(set(self.labels) - set(present))
            if unknown:
                raise ValueError(f"data.labels: {unknown} not in this corpus; it has {present}")
            if len(self.corpus_names) > 1:
                self._check_shared(utterances, self.labels)
            kept = [u for u in utterances if u.label in self.labels]
            log.info("data.labels keeps %d of %d utterances", len(kept), len(utterances))
            utterances, self.class_names = kept, list(self.labels)
        elif len(self.corpus_names) > 1:
            self.class_names = self._shared_labels(utterances)
            utterances = [u for u in utterances if u.label in self.class_names]
        else:
            self.class_names = present
        if not utterances:
            raise ValueError(f"no utterances found under data.root={self.adapter.root}")
        return utterances

    def _labels_by_corpus(self, utterances: list[Utterance]) -> dict[str, Counter]:
        by = {name: Counter() for name in self.corpus_names}
        for u in utterances:
            by[corpus_of(u)][u.label] += 1
        return by

    def _shared_labels(self, utterances: list[Utterance]) -> list[str]:
        """Several corpora, no data.labels: the classes every corpus has; log each dropped class and its count."""
        by = self._labels_by_corpus(utterances)
        shared = ordered(set.intersection(*(set(c) for c in by.values())))
        if not shared:
            have = "; ".join(f"{n}: {ordered(c)}" for n, c in by.items())
            raise ValueError(f"data.corpora: no class is in every corpus ({have}); map them with data.merge")
        dropped = [f"{label} ({name}: {count})" for name, counts in by.items()
                   for label, count in counts.items() if label not in shared]
        log.info("data=multi keeps the classes every corpus has: %s; dropped %s (data.labels or data.merge "
                 "choose otherwise)", shared, ", ".join(dropped) or "nothing")
        return shared

    def _check_shared(self, utterances: list[Utterance], labels: list[str]) -> None:
        by = self._labels_by_corpus(utterances)
        for name, counts in by.items():
            missing = [label for label in labels if not counts.get(label)]
            if missing:
                log.warning("data.labels: corpus %s has no %s; its UA counts only the classes it has", name, missing)

    @property
    def label(self) -> str:
        """What the data is, for titles: ``emodb``, or ``emodb + savee`` for data=multi."""
        return " + ".join(self.corpus_names)

    def corpus_index(self, i: int) -> int:
        """The index into ``corpus_names`` of utterance ``i``'s corpus."""
        return self.corpus_names.index(self.corpus_of(self.utterances[i]))

    def corpus_of(self, u: Utterance) -> str:
        """The corpus ``u`` came from: its data.corpora name, or the one corpus's name (a manifest's own
        ``corpus`` column is metadata then, not a corpus of this run)."""
        return corpus_of(u) if isinstance(self.adapter, MultiCorpus) else self.corpus_names[0]

    def prepare(self) -> None:
        """Generate the synthetic corpus (a one-off preparation) if the adapter makes one."""
        if isinstance(self.adapter, MultiCorpus):
            self.adapter.generate()
        elif hasattr(self.adapter, "generate"):
            self.adapter.scan()
