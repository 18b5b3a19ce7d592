"""The LightningDataModule, made of parts: a corpus decoded once (``ser.data.decoded``, the ``data`` config),
how batches are made (``LoaderOptions``, ``loader``), what a fold keeps (``ser.data.serve.FoldPolicy``,
``fold``), the faults injected on purpose (``ser.data.inject.Injection``, ``inject``) and the degraded copies
of multi-condition training (``ser.data.conditions.Conditions``, ``conditions``). It serves one fold at a
time (``use_fold``): waves, or a frozen upstream's output computed once (``use_upstream``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import lightning as L
from torch.utils.data import DataLoader

from ser.data.conditions import Conditions, babble_talkers
from ser.data.dataset import ClipDataset, collate
from ser.data.decoded import DecodedCorpus
from ser.data.exclude import excluded_indices
from ser.data.inject import Injection, degrade, fold_rng
from ser.data.samplers import BalancedBatchSampler, BucketBatchSampler
from ser.data.serve import FoldPolicy, Served, noisy_labels, serve
from ser.data.splits import Fold
from ser.data.upstream_cache import Upstream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoaderOptions:
    """The ``loader`` config: how a fold's utterances are cropped and batched.

    Args:
        batch_size: utterances per batch.
        num_workers: DataLoader workers; audio is already decoded, so 0 is usually fastest.
        max_train_s: training crops (random offset) of at most this many seconds; None keeps whole files.
        max_eval_s: evaluation crops (centred); None keeps whole files.
        sampler: ``bucket`` (length-bucketed, every item once per epoch) or ``balanced`` (class-balanced
            oversampling, still length-bucketed).
        balance: ``corpus``: training batches draw each corpus equally often (oversampling the smaller ones, as
            ``sampler=balanced`` does for classes; both together balance corpus x class).
        pin_memory: pin host memory for faster copies to a GPU.
        seed: batch order.
    """

    batch_size: int = 32
    num_workers: int = 0
    max_train_s: float | None = 4.0
    max_eval_s: float | None = None
    sampler: str = "bucket"
    balance: str | None = None
    pin_memory: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.sampler not in ("bucket", "balanced"):
            raise ValueError(f"loader.sampler must be bucket or balanced, got {self.sampler!r}")
        if self.balance not in (None, "corpus"):
            raise ValueError(f"loader.balance must be null or corpus, got {self.balance!r}")


class SERDataModule(L.LightningDataModule):
    """Serves the fold chosen with ``use_fold`` of a corpus loaded once.

    Args:
        corpus: the corpus (``DecodedCorpus``: the ``data`` config).
        loader: cropping and batching (``LoaderOptions``: the ``loader`` config).
        policy: what each fold keeps of its training data (``FoldPolicy``: the ``fold`` config).
        inject: faults injected on purpose, each on the side it names (``Injection``: the ``inject`` config).
        conditions: multi-condition training (``Conditions``: the ``conditions`` config): degraded copies of every
            training utterance, made once (through a frozen upstream, cached), one of which (or the clean
            utterance) each epoch trains on; ``copies: 0``: off.
    """

    def __init__(self, corpus: DecodedCorpus, loader: LoaderOptions | None = None, policy: FoldPolicy | None = None,
                 inject: Injection | None = None, conditions: Conditions | None = None):
        super().__init__()
        self.corpus, self.options = corpus, loader or LoaderOptions()
        self.policy, self.inject, self.conditions = policy or FoldPolicy(), inject or Injection(), conditions or Conditions()
        self.given_labels: list[str] = []  # every utterance's label as training would see it (inject.label_noise)
        self.excluded: set[int] = set()  # fold.exclude: utterances left out of training and validation
        self.served: Served | None = None  # the fold being served (``use_fold``)
        self.test_waves: dict[int, object] = {}  # inject.test_*: this fold's test audio as degraded
        self.test_cached: dict[int, object] = {}  # ... and a frozen upstream's output for it
        self.upstream: Upstream | None = None  # whose output is served instead of waves (``use_upstream``)
        self.cached: list | None = None  # that output, per utterance
        self.train_from_waves = False
        self.copies: dict[tuple, object] = {}  # (what, utterance, copy[, talkers]) -> a degraded copy (conditions)

    # -- the corpus and the fold being served ------------------------------------------------------------
    @property
    def fold(self) -> Fold | None:
        """The fold as served (every rule of ``ser.data.serve`` applied), or None before ``use_fold``."""
        return self.served.fold if self.served else None

    @property
    def targets(self) -> list[int]:
        """The class index each utterance trains or is scored with in this fold (``inject.label_noise`` may have
        replaced a training or validation label)."""
        return self.served.targets

    @property
    def changed_labels(self) -> list[dict]:
        """inject.label_noise: this fold's replaced labels."""
        return self.served.changed_labels if self.served else []

    def load(self) -> None:
        """Load the corpus (``DecodedCorpus.load``), the labels training sees (``inject.label_noise``) and
        ``fold.exclude``. Idempotent."""
        if self.given_labels:
            return
        self.corpus.load()
        self.given_labels = noisy_labels([u.label for u in self.corpus.utterances], self.corpus.class_names,
                                         self.inject)
        if self.policy.exclude:
            self.excluded = excluded_indices(self.policy.exclude, [u.path for u in self.corpus.utterances])
            log.info("fold.exclude leaves %d utterances out of training and validation (%s)", len(self.excluded),
                     self.policy.exclude)

    def prepare_data(self) -> None:
        # Generating the synthetic corpus (a one-off preparation) happens once per node.
        self.corpus.prepare()

    def setup(self, stage: str | None = None) -> None:
        self.load()
        if self.served is None:
            raise RuntimeError("call use_fold(fold) before training: the module does not know which speakers to hold out")

    def use_fold(self, fold: Fold, subset: float = 1.0) -> None:
        """Serve ``fold`` (``ser.data.serve.serve``), its test audio as ``inject.test_*`` degrades it; ``subset``: a
        share of every class's training utterances kept, seeded (``ser.diagnose``'s learning curve)."""
        self.load()
        c = self.corpus
        self.served = serve(c.utterances, c.digests, c.class_names, fold, self.policy, self.inject, self.given_labels,
                            self.excluded, subset)
        self.test_waves, self.test_cached = {}, {}
        if self.inject.changes_test_audio:
            babble = [c.stored(i) for i in self.served.pool]  # read only the talkers drawn
            for i in self.served.fold.test:
                rng = fold_rng(self.inject.seed, f"{self.served.fold.name}/{i}", 2)
                self.test_waves[i] = degrade(c.audio(i), self.inject, c.sample_rate, rng, babble)
        self._cache_test_audio()

    def _cache_test_audio(self) -> None:
        """inject.test_*: the upstream's output for this fold's degraded test audio (a frozen upstream in use)."""
        if self.upstream is not None and self.test_waves:
            index = sorted(self.test_waves)
            self.test_cached = dict(zip(index, self.upstream.encode([self.test_waves[i] for i in index])))

    def wave(self, i: int):
        """Utterance ``i``'s audio as this fold sees it (degraded when it is an injected test utterance); a read."""
        return self.test_waves.get(i) if i in self.test_waves else self.corpus.audio(i)

    def use_upstream(self, upstream: Upstream | None, wave_augment: bool = False) -> None:
        """Serve a frozen upstream's output instead of waves (``ser.data.upstream_cache.Upstream``), computed once per
        utterance for the corpus's life (``DecodedCorpus.encoded``); batches then carry ``feats`` and ``frames``
        cropped in frames. None serves waves. ``wave_augment``: training batches stay waves (the upstream runs on
        the augmented audio every step); evaluation still reads the cache.
        """
        self.upstream = upstream
        if upstream is None:
            self.cached = None
            return
        self.load()
        self.cached = self.corpus.encoded(upstream)
        self._cache_test_audio()
        self.train_from_waves = wave_augment
        if wave_augment:
            log.info("wave-level augmentation is on, so training batches run the upstream on augmented audio every "
                     "step; the %s feature cache serves evaluation only", type(upstream.frontend).__name__)

    def train_class_counts(self) -> list[int]:
        counts = Counter(self.targets[i] for i in self.fold.train)
        return [counts.get(c, 0) for c in range(len(self.corpus.class_names))]

    # -- datasets and loaders --------------------------------------------------------------------------
    def _dataset(self, indices: list[int], max_s: float | None, train: bool, waves: bool = False) -> ClipDataset:
        c = self.corpus
        cap = int(max_s * c.sample_rate) if max_s else None
        clips = [self.test_waves.get(i, c.stored(i)) for i in indices]  # read per item
        from_cache = self.cached is not None and not (train and self.train_from_waves) and not waves
        if from_cache:
            clips = [self.test_cached.get(i, self.cached[i]) for i in indices]
            cap = cap and int(cap * self.upstream.frames_per_sample) + 1  # crops in frames
        speaker_index = {s: k for k, s in enumerate(c.speakers)}
        speakers = [speaker_index[c.utterances[i].speaker] for i in indices]
        corpora = [c.corpus_index(i) for i in indices]
        labels = [self.targets[i] for i in indices]
        variants = self.condition_copies(indices, from_cache) if train and self.conditions.active else None
        return ClipDataset(clips, labels, cap, train, speakers, corpora, variants, self.conditions.clean_p)

    def condition_copies(self, indices: list[int], encoded: bool) -> list[list]:
        """``conditions.copies`` degraded copies of each training utterance (``ser.data.conditions``): waves,
        or with ``encoded`` the frozen upstream's output for them (``use_upstream``), computed once.

        Copies without babble are the same in every fold and kept for the data module's life; babble
        copies mix other training speakers of this fold, so they are made per fold (from the disk
        cache when ``data.feature_cache_dir`` holds them).
        """
        what = self.upstream.key if encoded else "wave"
        plans, todo = self._plan_copies(indices, what)
        if todo:
            log.info("conditions: %d new degraded copies of %d training utterances (%s)", len(todo), len(indices),
                     self.conditions.describe())
            keys, made = list(todo), list(todo.values())
            if encoded:
                made = self.upstream.encode(made)
            self.copies.update(zip(keys, made))
        # babble copies of another fold's talkers are not needed again soon: keep this fold's only
        wanted = set(plans.values())
        self.copies = {key: v for key, v in self.copies.items() if len(key) == 3 or key in wanted}
        return [[self.copies[plans[i, k]] for k in range(self.conditions.copies)] for i in indices]

    def _plan_copies(self, indices: list[int], what) -> tuple[dict, dict]:
        """((utterance, copy) -> the copy's key, key -> wave of each copy not made yet)."""
        cond, c = self.conditions, self.corpus
        train_set = sorted(self.fold.train)
        plans, todo = {}, {}
        for i in indices:
            for k in range(cond.copies):
                plan = cond.plan(c.digests[i], k)
                key = (what, i, k)
                if not plan.fold_independent:
                    own = c.utterances[i].speaker
                    others = [j for j in train_set if c.utterances[j].speaker != own]
                    key = (what, i, k, tuple(babble_talkers(c.digests[i], k, cond.seed, others)))
                plans[i, k] = key
                if key not in self.copies and key not in todo:
                    babble = [c.audio(j) for j in key[3]] if len(key) > 3 else ()
                    todo[key] = cond.render(c.audio(i), plan, c.sample_rate, babble)
        return plans, todo

    def loader(self, indices: list[int], train: bool = False, waves: bool = False) -> DataLoader:
        """Batches of these utterances as the current fold sees them: ``train`` (random crops of at most
        ``max_train_s``, balanced or shuffled) or evaluation order (whole files, or ``max_eval_s`` crops).
        ``waves``: audio even where a frozen upstream's cached output is served (``use_upstream``)."""
        if not indices:
            raise ValueError(f"fold {self.fold.name}: the {'training' if train else 'evaluation'} set is empty")
        o = self.options
        dataset = self._dataset(indices, o.max_train_s if train else o.max_eval_s, train, waves)
        groups = None  # what balanced batches even out: classes, corpora, or corpus x class
        if train and o.balance == "corpus":
            groups = dataset.corpora
            if o.sampler == "balanced":
                groups = [k * len(self.corpus.class_names) + y for k, y in zip(dataset.corpora, dataset.labels)]
        elif train and o.sampler == "balanced":
            groups = dataset.labels
        if groups is not None:
            sampler = BalancedBatchSampler(dataset.lengths(), groups, o.batch_size, seed=o.seed)
        else:
            sampler = BucketBatchSampler(dataset.lengths(), o.batch_size, shuffle=train, seed=o.seed)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=o.num_workers,
                          pin_memory=o.pin_memory, persistent_workers=o.num_workers > 0)

    def speaker_dataloader(self) -> DataLoader:
        """Every utterance of the fold (train, val and test), whole, for per-speaker or per-corpus statistics.

        The test speakers' (or test corpus's) audio is used without labels: such normalisation is transductive.
        """
        fold = self.fold
        indices = sorted(set(fold.train) | set(fold.val) | set(fold.test))
        dataset = self._dataset(indices, None, train=False)
        sampler = BucketBatchSampler(dataset.lengths(), self.options.batch_size, shuffle=False, seed=self.options.seed)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.fold.train, train=True)

    def val_dataloader(self) -> DataLoader | list:
        if not self.fold.val:  # split.val=0: no validation speakers, so no validation loop
            return []
        return self.loader(self.fold.val, train=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.fold.test, train=False)
