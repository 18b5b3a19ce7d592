"""The LightningDataModule: folds of a corpus decoded once (``ser.data.decoded``) -> one fold's loaders."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from ser.corpora.labels import canonical
from ser.corpora.utterance import Utterance
from ser.data.conditions import Conditions, babble_talkers
from ser.data.dataset import ClipDataset, collate
from ser.data.decoded import DecodedCorpus
from ser.data.exclude import excluded_indices
from ser.data.inject import Injection, degrade, fold_rng, keep_share, replace_labels
from ser.data.samplers import BalancedBatchSampler, BucketBatchSampler
from ser.data.splits import Fold, check_disjoint, check_duplicates
from ser.data.store import materialize, resident
from ser.data.upstream_cache import UpstreamCache

log = logging.getLogger(__name__)


def _of_data(name: str, doc: str) -> property:
    """A read-only view of the loaded corpus's ``name`` (``DecodedCorpus``) on the data module."""
    return property(lambda self: getattr(self.data, name), doc=doc)


class SERDataModule(L.LightningDataModule):
    """Loads a corpus once and serves the fold chosen with ``use_fold``.

    Args:
        corpus: a corpus adapter class (Hydra ``_partial_``) called with ``root`` (and ``corpora``).
        root: the corpus folder (``data.root``).
        corpora: ``data=multi`` only: corpus name -> folder or adapter options (``ser.corpora.multi``).
            The classes kept are those every corpus has, unless ``labels`` lists them.
        sample_rate: every file is resampled to this rate.
        labels: classes to keep, in this order; None keeps every class the corpus has.
        merge: label -> label map applied before selection (``{calm: neutral}``).
        batch_size: utterances per batch.
        num_workers: DataLoader workers; audio is already decoded, so 0 is usually fastest.
        max_train_s: training crops (random offset) of at most this many seconds; None keeps whole files.
        max_eval_s: evaluation crops (centred); None keeps whole files.
        min_duration_s: shorter files are bad files.
        on_bad_file: ``error`` stops at the first bad file (unreadable, empty, silent, NaN, too short,
            unlabelled), naming it; ``skip`` leaves it out and lists it in ``skipped``.
        cache_dir: decoded audio is kept here across runs (None: decode every run).
        sampler: ``bucket`` (length-bucketed, every item once per epoch) or ``balanced``
            (class-balanced oversampling, still length-bucketed).
        balance: ``corpus``: training batches draw each corpus equally often (oversampling the smaller
            ones, like ``sampler=balanced`` does for classes; both together balance corpus x class).
        train_fraction: label -> share of that class's training utterances kept (e.g. ``{anger: 0.2}``)
            to create controlled imbalance; validation and test sets are untouched.
        pin_memory: pin host memory for faster copies to a GPU.
        seed: batch order.
        feature_cache_dir: a frozen upstream's output is kept here across runs (``use_frontend``);
            None keeps it in memory only.
        inject: faults injected on purpose (the ``inject`` config, ``ser.data.inject.Injection``),
            applied in ``use_fold`` to the side each names; None injects nothing.
        exclude: a file naming utterances left out of training and validation, never test
            (``ser.data.exclude``: ``ser.diagnose``'s ``suspect_labels.csv`` or one path per line).
        conditions: multi-condition training (the ``conditions`` config, ``ser.data.conditions.Conditions``):
            degraded copies of every training utterance, made once (through a frozen upstream, cached),
            one of which (or the clean utterance) each epoch trains on; None or ``copies: 0``: off.
        resident_mb: stored audio, or a frozen upstream's stored output, that takes at most this many MB
            once read is held in memory (as fast as before the store; each process its own copy); more is
            read per batch from the store, so memory stays flat as the corpus grows. 0: always per batch.
        columns, label_map: ``data=hf`` only (``ser.corpora.hf``): the dataset's columns for audio, label,
            speaker and split, and its labels' canonical names.
    """

    def __init__(
        self,
        corpus: Callable[..., object],
        root: str,
        sample_rate: int = 16000,
        labels: list[str] | None = None,
        merge: dict[str, str] | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        max_train_s: float | None = 4.0,
        max_eval_s: float | None = None,
        min_duration_s: float = 0.1,
        on_bad_file: str = "error",
        cache_dir: str | None = None,
        sampler: str = "bucket",
        train_fraction: dict[str, float] | None = None,
        pin_memory: bool = False,
        seed: int = 0,
        feature_cache_dir: str | None = None,
        corpora: dict | None = None,
        balance: str | None = None,
        inject: dict | None = None,
        exclude: str | None = None,
        conditions: dict | None = None,
        columns: dict | None = None,
        label_map: dict | None = None,
        resident_mb: float = 1024,
    ):
        super().__init__()
        if balance not in (None, "corpus"):
            raise ValueError(f"data.balance must be null or corpus, got {balance!r}")
        options = {k: v for k, v in (("corpora", corpora), ("columns", columns), ("label_map", label_map)) if v is not None}
        # the fold-independent half: the corpus listed, its labels kept, its audio decoded once
        self.data = DecodedCorpus(corpus(root=root, **options), sample_rate, labels, merge, min_duration_s,
                                  on_bad_file, cache_dir, resident_mb)
        self.resident_mb = resident_mb
        self.balance = balance
        self.batch_size, self.num_workers, self.pin_memory, self.seed = batch_size, num_workers, pin_memory, seed
        self.max_train_s, self.max_eval_s = max_train_s, max_eval_s
        if sampler not in ("bucket", "balanced"):
            raise ValueError(f"data.sampler must be bucket or balanced, got {sampler!r}")
        self.sampler = sampler
        self.train_fraction = {canonical(k): float(v) for k, v in (train_fraction or {}).items()}
        self.inject = Injection(**(inject or {}))
        self.exclude = exclude
        self.excluded: set[int] = set()  # data.exclude: utterances left out of training and validation
        self.conditions = Conditions(**(conditions or {}))
        self.copies: dict[tuple, object] = {}  # (what, utterance, copy) -> a fold-independent copy (conditions)
        self.upstream_cache = UpstreamCache(feature_cache_dir)
        self.cached: list | None = None  # a frozen upstream's output per utterance (use_frontend)
        self.cached_key, self.frames_per_sample = None, 0.0
        self.upstream = None  # (frontend, device) whose cached output is served, so a new fold's test audio gets it too
        self.train_from_waves = False
        self.fold: Fold | None = None
        self.targets: list[int] = []  # the class index each utterance trains or is scored with in this fold
        self.given_labels: list[str] = []  # inject.label_noise: every utterance's label as training would see it
        self.changed_labels: list[dict] = []  # inject.label_noise: this fold's replaced labels
        self.test_waves: dict[int, object] = {}  # inject.test_*: this fold's test audio as degraded
        self.test_cached: dict[int, object] = {}  # ... and a frozen upstream's output for it

    # -- corpus (``ser.data.decoded``: the same for every fold) ------------------------------
    corpus = _of_data("adapter", "the corpus adapter")
    utterances = _of_data("utterances", "every utterance kept, in the order of ``waves``")
    waves = _of_data("waves", "decoded audio: handles into the audio store (read when indexed), or tensors")
    digests = _of_data("digests", "content hash of each utterance's decoded audio")
    class_names = _of_data("class_names", "the classes, in label-index order")
    speakers = _of_data("speakers", "sorted speaker ids; the batch's ``speakers`` index into it")
    corpus_names = _of_data("corpus_names", "the corpora, in data.corpora's order; the batch's ``corpora`` index into it")
    skipped = _of_data("skipped", "bad files left out with data.on_bad_file=skip, and why")
    out_of_range = _of_data("out_of_range", "files whose float samples exceed full scale")
    duplicates = _of_data("duplicates", "groups of files with identical decoded audio")
    sample_rate = _of_data("sample_rate", "the rate every file is resampled to")
    cache = _of_data("cache", "the audio store (``ser.audio.AudioCache``), or None")
    corpus_label = _of_data("label", "what the data is, for titles: ``emodb``, or ``emodb + savee``")

    def load(self) -> None:
        """Load the corpus (``DecodedCorpus.load``), then the labels training sees (``inject.label_noise``)
        and ``data.exclude``. Idempotent."""
        if self.targets:
            return
        self.data.load()
        self.targets = [self.class_names.index(u.label) for u in self.utterances]
        self.given_labels = [u.label for u in self.utterances]
        if self.inject.label_noise > 0:  # one draw for the corpus: every fold's training sees the same wrong labels
            rng = fold_rng(self.inject.seed, "labels", 1)
            new = replace_labels(self.given_labels, list(range(len(self.utterances))), self.class_names,
                                 self.inject.label_noise, self.inject.label_noise_kind, rng)
            for i, label in new.items():
                self.given_labels[i] = label
        if self.exclude:
            self.excluded = excluded_indices(self.exclude, [u.path for u in self.utterances])
            log.info("data.exclude leaves %d utterances out of training and validation (%s)", len(self.excluded),
                     self.exclude)

    def utterance_corpus(self, u: Utterance) -> str:
        """The corpus ``u`` came from (``DecodedCorpus.corpus_of``)."""
        return self.data.corpus_of(u)

    def corpus_index(self, i: int) -> int:
        return self.corpus_names.index(self.utterance_corpus(self.utterances[i]))

    def prepare_data(self) -> None:
        # Generating the synthetic corpus (a one-off preparation) happens once per node.
        self.data.prepare()

    def setup(self, stage: str | None = None) -> None:
        self.load()
        if self.fold is None:
            raise RuntimeError("call use_fold(fold) before training: the module does not know which speakers to hold out")

    def use_fold(self, fold: Fold, subset: float = 1.0) -> None:
        """Serve ``fold``: the split guards, ``data.train_fraction``, ``inject``, then ``subset`` (a share of
        every class's training utterances kept, seeded: ``ser.diagnose``'s learning curve)."""
        self.load()
        check_disjoint(self.utterances, fold)
        check_duplicates(self.digests, fold, self.utterances)
        if self.excluded:
            fold = replace(fold, train=[i for i in fold.train if i not in self.excluded],
                           val=[i for i in fold.val if i not in self.excluded])
        if self.train_fraction:
            fold = self._subsample(fold)
        fold = self._inject(fold)
        self._cache_test_audio()
        if subset < 1.0:
            labels = [u.label for u in self.utterances]
            fold = replace(fold, train=keep_share(fold.train, labels, subset, fold_rng(self.seed, fold.name, 3)))
        for part, indices in (("test", fold.test), ("validation", fold.val)):
            missing = [c for c in self.class_names if indices and c not in {self.utterances[i].label for i in indices}]
            if missing:
                log.warning("fold %s: the %s set has no %s; its UA averages the classes it has", fold.name, part,
                            ", ".join(missing))
        self.fold = fold

    def _subsample(self, fold: Fold) -> Fold:
        """Keep ``train_fraction[label]`` of each listed class's training utterances (seeded)."""
        unknown = sorted(set(self.train_fraction) - set(self.class_names))
        if unknown:
            raise ValueError(f"data.train_fraction: {unknown} not among the classes {self.class_names}")
        rng = np.random.default_rng(self.seed)
        keep = []
        for name in self.class_names:
            ix = [i for i in fold.train if self.utterances[i].label == name]
            share = self.train_fraction.get(name, 1.0)
            if share < 1.0:
                ix = sorted(rng.permutation(ix)[: max(1, round(share * len(ix)))].tolist())
                log.info("data.train_fraction keeps %d %s training utterances (%.0f %%)", len(ix), name, 100 * share)
            keep += ix
        return replace(fold, train=sorted(keep))

    def _inject(self, fold: Fold) -> Fold:
        """Apply ``inject`` to this fold: fewer training utterances, replaced training and validation
        labels, degraded test audio. Test labels and training audio are never touched."""
        inj, labels = self.inject, [u.label for u in self.utterances]
        self.targets = [self.class_names.index(x) for x in labels]
        self.changed_labels, self.test_waves, self.test_cached = [], {}, {}
        if not inj.active:
            return fold
        log.info("inject (fold %s): %s", fold.name, inj.describe())
        if inj.train_share < 1.0:
            fold = replace(fold, train=keep_share(fold.train, labels, inj.train_share, fold_rng(inj.seed, fold.name, 0)))
        if inj.label_noise > 0:
            seen = sorted(fold.train + fold.val)
            for i in seen:
                if self.given_labels[i] != labels[i]:
                    self.targets[i] = self.class_names.index(self.given_labels[i])
                    u = self.utterances[i]
                    self.changed_labels.append({"path": u.path, "speaker": u.speaker, "label": u.label,
                                                "given": self.given_labels[i]})
            log.info("inject.label_noise: %d of %d training and validation labels replaced", len(self.changed_labels),
                     len(seen))
        if inj.changes_test_audio:
            babble = [self.waves.handle(i) for i in fold.train]  # read only the talkers drawn
            for i in fold.test:
                rng = fold_rng(inj.seed, f"{fold.name}/{i}", 2)
                self.test_waves[i] = degrade(materialize(self.waves[i]), inj, self.sample_rate, rng, babble)
        return fold

    def _cache_test_audio(self) -> None:
        """inject.test_*: the upstream's output for this fold's degraded test audio (a frozen upstream in use)."""
        if self.upstream is not None and self.test_waves:
            frontend, device = self.upstream
            index = sorted(self.test_waves)
            self.test_cached = dict(zip(index, self.upstream_cache.features(frontend, [self.test_waves[i] for i in index],
                                                                          device)))

    def wave(self, i: int):
        """Utterance ``i``'s audio as this fold sees it (degraded when it is an injected test utterance)."""
        return self.test_waves.get(i, self.waves[i])

    def use_frontend(self, frontend, device="cpu", wave_augment: bool = False) -> None:
        """Serve a frozen upstream's output instead of waves, computed once for every utterance.

        ``frontend.cacheable`` (a frozen upstream) turns it on: ``frontend.encode`` runs once per
        utterance (``UpstreamCache``: in memory for this data module's life, so every fold reuses it,
        and on disk for later runs), and batches carry ``feats`` and ``frames`` cropped in frames.
        Other frontends get waves as before. ``wave_augment``: training batches stay waves (the
        upstream runs on the augmented audio every step); evaluation still reads the cache.
        """
        if not getattr(frontend, "cacheable", False):
            self.cached = self.cached_key = self.upstream = None
            return
        self.load()
        key = frontend.cache_key()
        if key != self.cached_key:
            handles = [self.waves.handle(i) for i in range(len(self.waves))]
            self.cached = resident(self.upstream_cache.features(frontend, handles, device, self.digests),
                                   self.resident_mb, f"{type(frontend).__name__} features")
            self.cached_key = key
            self.frames_per_sample = 1 / frontend.hop_length
        self.upstream = (frontend, device)
        self._cache_test_audio()
        self.train_from_waves = wave_augment
        if wave_augment:
            log.info("wave-level augmentation is on, so training batches run the upstream on augmented audio every "
                     "step; the %s feature cache serves evaluation only", type(frontend).__name__)

    # -- views of the current fold ----------------------------------------------------------
    def label_index(self, i: int) -> int:
        """The class utterance ``i`` trains or is scored with in this fold (``inject.label_noise`` may
        have replaced a training or validation label)."""
        return self.targets[i]

    def train_class_counts(self) -> list[int]:
        counts = Counter(self.targets[i] for i in self.fold.train)
        return [counts.get(c, 0) for c in range(len(self.class_names))]

    def _dataset(self, indices: list[int], max_s: float | None, train: bool, waves: bool = False) -> ClipDataset:
        cap = int(max_s * self.sample_rate) if max_s else None
        clips = [self.test_waves.get(i, self.waves.handle(i)) for i in indices]  # read per item
        from_cache = self.cached is not None and not (train and self.train_from_waves) and not waves
        if from_cache:
            clips = [self.test_cached.get(i, self.cached[i]) for i in indices]
            cap = cap and int(cap * self.frames_per_sample) + 1  # crops in frames
        speaker_index = {s: k for k, s in enumerate(self.speakers)}
        speakers = [speaker_index[self.utterances[i].speaker] for i in indices]
        corpora = [self.corpus_index(i) for i in indices]
        labels = [self.label_index(i) for i in indices]
        variants = self.condition_copies(indices, from_cache) if train and self.conditions.active else None
        return ClipDataset(clips, labels, cap, train, speakers, corpora, variants, self.conditions.clean_p)

    def condition_copies(self, indices: list[int], encoded: bool) -> list[list]:
        """``conditions.copies`` degraded copies of each training utterance (``ser.data.conditions``): waves,
        or with ``encoded`` the frozen upstream's output for them (``use_frontend``), computed once.

        Copies without babble are the same in every fold and kept for the data module's life; babble
        copies mix other training speakers of this fold, so they are made per fold (from the disk
        cache when ``data.feature_cache_dir`` holds them).
        """
        cond, fold = self.conditions, self.fold
        what = self.cached_key if encoded else "wave"
        train_set = sorted(fold.train)
        plans, todo = {}, {}  # (i, k) -> plan; key -> wave to encode
        for i in indices:
            for k in range(cond.copies):
                plan = cond.plan(self.digests[i], k)
                key = (what, i, k)
                if not plan.fold_independent:
                    own = self.utterances[i].speaker
                    others = [j for j in train_set if self.utterances[j].speaker != own]
                    talkers = babble_talkers(self.digests[i], k, cond.seed, others)
                    key = (what, i, k, tuple(talkers))
                plans[i, k] = key
                if key not in self.copies and key not in todo:
                    babble = [materialize(self.waves[j]) for j in key[3]] if len(key) > 3 else ()
                    todo[key] = cond.render(materialize(self.waves[i]), plan, self.sample_rate, babble)
        if todo:
            log.info("conditions: %d new degraded copies of %d training utterances (%s)", len(todo), len(indices),
                     cond.describe())
            keys = list(todo)
            made = list(todo.values())
            if encoded:
                frontend, device = self.upstream
                made = self.upstream_cache.features(frontend, made, device)
            self.copies.update(zip(keys, made))
        # babble copies of another fold's talkers are not needed again soon: keep this fold's only
        wanted = set(plans.values())
        self.copies = {key: v for key, v in self.copies.items() if len(key) == 3 or key in wanted}
        return [[self.copies[plans[i, k]] for k in range(cond.copies)] for i in indices]

    def loader(self, indices: list[int], train: bool = False, waves: bool = False) -> DataLoader:
        """Batches of these utterances as the current fold sees them: ``train`` (random crops of at most
        ``max_train_s``, balanced or shuffled) or evaluation order (whole files, or ``max_eval_s`` crops).
        ``waves``: audio even where a frozen upstream's cached output is served (``use_frontend``)."""
        if not indices:
            raise ValueError(f"fold {self.fold.name}: the {'training' if train else 'evaluation'} set is empty")
        dataset = self._dataset(indices, self.max_train_s if train else self.max_eval_s, train, waves)
        groups = None  # what balanced batches even out: classes, corpora, or corpus x class
        if train and self.balance == "corpus":
            groups = dataset.corpora
            if self.sampler == "balanced":
                groups = [c * len(self.class_names) + y for c, y in zip(dataset.corpora, dataset.labels)]
        elif train and self.sampler == "balanced":
            groups = dataset.labels
        if groups is not None:
            sampler = BalancedBatchSampler(dataset.lengths(), groups, self.batch_size, seed=self.seed)
        else:
            sampler = BucketBatchSampler(dataset.lengths(), self.batch_size, shuffle=train, seed=self.seed)
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def speaker_dataloader(self) -> DataLoader:
        """Every utterance of the fold (train, val and test), whole, for per-speaker or per-corpus statistics.

        The test speakers' (or test corpus's) audio is used without labels: such normalisation is transductive.
        """
        fold = self.fold
        indices = sorted(set(fold.train) | set(fold.val) | set(fold.test))
        dataset = self._dataset(indices, None, train=False)
        sampler = BucketBatchSampler(dataset.lengths(), self.batch_size, shuffle=False, seed=self.seed)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.fold.train, train=True)

    def val_dataloader(self) -> DataLoader | list:
        if not self.fold.val:  # split.val=0: no validation speakers, so no validation loop
            return []
        return self.loader(self.fold.val, train=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.fold.test, train=False)
