"""Utterance-level feature sets, each cached on disk per utterance: what the classical reference
(``ser.baselines``) classifies and the diagnosis's linear probes read.

- a frontend of ``conf/features`` (``logmel``, ``mfcc``, ``logmel_prosody``, ...): six functionals of
  every row (mean, std, 10th/50th/90th percentiles, mean |delta|) over the valid frames;
- a pretrained upstream (``ge2e``, ``ssl``): mean and std of every hidden unit of every chosen layer,
  from the same frame cache that training uses;
- an openSMILE set (``egemaps``: eGeMAPSv02, 88 functionals; ``compare``: ComParE_2016, 6373), via the
  ``opensmile`` package (the ``baselines`` extra).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from tqdm.auto import tqdm

from ser.audio import content_digest
from ser.build import build_frontend
from ser.cli import compose_config
from ser.data.decoded import DecodedCorpus
from ser.data.store import materialize
from ser.data.upstream_cache import FeatureStore
from ser.nn import length_mask, masked_mean_std
from ser.probe import per_speaker

OPENSMILE = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}


@torch.no_grad()
def utterance_functionals(frontend, wave: torch.Tensor) -> np.ndarray:
    """(6 F,) per feature row: mean, std, p10, p50, p90 and mean |delta| over the valid frames."""
    feats, frames = frontend(wave[None], torch.tensor([wave.numel()]))
    feats = feats[0, :, : int(frames[0])]  # (F, T)
    q = torch.quantile(feats, torch.tensor([0.1, 0.5, 0.9]), dim=1)  # (3, F)
    delta = (feats[:, 1:] - feats[:, :-1]).abs().mean(1) if feats.shape[1] > 1 else torch.zeros(len(feats))
    return torch.cat([feats.mean(1), feats.std(1, correction=0), *q, delta]).numpy()


def functionals(frontend, waves: list[torch.Tensor]) -> np.ndarray:
    """(N, 6 F) utterance functionals of every wave (``utterance_functionals``)."""
    return np.stack([utterance_functionals(frontend, w) for w in waves])


def upstream_statistics(cached: list[torch.Tensor]) -> np.ndarray:
    """(N, 2 F) mean and std over frames of each utterance's cached upstream output (F, T')."""
    out = []
    for feats in cached:
        feats = materialize(feats).float()[None]  # (1, F, T')
        mean, std = masked_mean_std(feats, length_mask(torch.tensor([feats.shape[-1]]), feats.shape[-1]))
        out.append(torch.cat([mean[0], std[0]]).numpy())
    return np.stack(out)


def _per_utterance(store: FeatureStore, key: str, waves: list[torch.Tensor], compute, desc: str) -> np.ndarray:
    """``compute(wave) -> (D,)`` for every wave, read from ``store`` where it was computed before."""
    rows = []
    for wave in tqdm(waves, desc=desc, unit="utt", leave=False):
        wave = materialize(wave)
        digest = content_digest(wave)
        row = store.get(key, digest)
        if row is None:
            row = torch.tensor(np.asarray(compute(wave), dtype=np.float32))  # a copy: openSMILE's array is read-only
            store.put(key, digest, row)
        rows.append(row.numpy())
    return np.stack(rows)


def opensmile_set(name: str, corpus: DecodedCorpus, store: FeatureStore, waves: list | None = None) -> np.ndarray:
    """(N, D) openSMILE functionals of the named set (``egemaps`` or ``compare``) of the corpus's utterances, or of
    ``waves`` at its sample rate."""
    try:
        import opensmile
    except ImportError as err:
        raise ImportError(f"features={name} needs openSMILE: pip install -e '.[baselines]'") from err
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, OPENSMILE[name]),
                            feature_level=opensmile.FeatureLevel.Functionals)
    rate = corpus.sample_rate
    key = f"opensmile-{OPENSMILE[name]}-{opensmile.__version__}-{rate}"
    return _per_utterance(store, key, _waves(corpus, waves), lambda w: smile.process_signal(w.numpy(), rate).values[0],
                          name)


def frontend_set(frontend, settings: dict, corpus: DecodedCorpus, store: FeatureStore, device="cpu",
                 waves: list | None = None) -> np.ndarray:
    """(N, D) utterance features from a ``conf/features`` frontend: statistics of a pretrained upstream's
    cached frames, or functionals of a spectrogram frontend's rows (cached per settings). Of the corpus's
    utterances, or of ``waves`` when given (e.g. a fold's degraded test audio, ``SERDataModule.test_waves``)."""
    if getattr(frontend, "cacheable", False):  # the frame cache training uses, on disk
        return upstream_statistics(corpus.upstream_cache.features(frontend, _waves(corpus, waves), device))
    key = "functionals-" + hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return _per_utterance(store, key, _waves(corpus, waves), lambda w: utterance_functionals(frontend, w), "functionals")


def _waves(corpus: DecodedCorpus, waves: list | None) -> list:
    """``waves``, or every utterance of the corpus unread (read one at a time where used)."""
    return list(waves) if waves is not None else [corpus.stored(i) for i in range(len(corpus))]


def extractor(sets: list[str], overrides: list[str], corpus: DecodedCorpus, store: FeatureStore, cfg=None):
    """``extract(waves=None) -> [(N, D) block per feature set]``: of every utterance of ``corpus``, or of
    ``waves``. ``sets`` empty: the frontend of ``cfg.features``; a named set composes training's config with
    ``overrides`` and ``features=<set>``."""
    feature_keys = [o for o in overrides if o.lstrip("+~").startswith("features.")]
    makers = []
    for name in sets or [None]:
        if name in OPENSMILE:
            makers.append(lambda waves, name=name: opensmile_set(name, corpus, store, waves))
            continue
        if name is not None:
            rest = [o for o in overrides if o not in feature_keys]
            cfg = compose_config("train", rest + [f"features={name}"] + feature_keys)
        frontend = build_frontend(cfg)[0].eval()  # unnormalised: the classifier standardises, per fold
        settings = {k: v for k, v in cfg.features.items() if k != "normalize"}
        makers.append(lambda waves, f=frontend, s=settings: frontend_set(f, s, corpus, store, waves=waves))

    def extract(waves=None) -> list[np.ndarray]:
        return [make(waves) for make in makers]

    return extract


def fold_matrix(X: np.ndarray, dm, extract, speakers: list[str] | None = None) -> np.ndarray:
    """``X`` as the current fold sees it: the rows of injected test audio (``dm.test_waves``) recomputed,
    then, with ``speakers``, every speaker standardised with their own statistics (``per_speaker``)."""
    if dm.test_waves:
        index = sorted(dm.test_waves)
        X = X.copy()
        X[index] = np.concatenate(extract([dm.test_waves[i] for i in index]), axis=1)
    return per_speaker(X, speakers) if speakers is not None else X
