"""Utterance-level feature sets for the classical reference, each cached on disk per utterance.

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

from ser.data.store import materialize
from ser.data.upstream_cache import FeatureStore, audio_digest
from ser.models.masking import length_mask, masked_mean_std

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
        digest = audio_digest(wave)
        row = store.get(key, digest)
        if row is None:
            row = torch.tensor(np.asarray(compute(wave), dtype=np.float32))  # a copy: openSMILE's array is read-only
            store.put(key, digest, row)
        rows.append(row.numpy())
    return np.stack(rows)


def opensmile_set(name: str, waves: list[torch.Tensor], sample_rate: int, store: FeatureStore) -> np.ndarray:
    """(N, D) openSMILE functionals of the named set (``egemaps`` or ``compare``)."""
    try:
        import opensmile
    except ImportError as err:
        raise ImportError(f"features={name} needs openSMILE: pip install -e '.[baselines]'") from err
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, OPENSMILE[name]),
                            feature_level=opensmile.FeatureLevel.Functionals)
    key = f"opensmile-{OPENSMILE[name]}-{opensmile.__version__}-{sample_rate}"
    return _per_utterance(store, key, waves, lambda w: smile.process_signal(w.numpy(), sample_rate).values[0], name)


def frontend_set(frontend, settings: dict, dm, store: FeatureStore, device="cpu",
                 waves: list[torch.Tensor] | None = None) -> np.ndarray:
    """(N, D) utterance features from a ``conf/features`` frontend: statistics of a pretrained upstream's
    cached frames, or functionals of a spectrogram frontend's rows (cached per settings). Of the data
    module's utterances, or of ``waves`` when given (e.g. a fold's degraded test audio, ``dm.test_waves``)."""
    if getattr(frontend, "cacheable", False):  # the frame cache training uses, on disk; the data module's state untouched
        return upstream_statistics(dm.upstream_cache.features(frontend, dm.waves if waves is None else list(waves), device))
    key = "functionals-" + hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return _per_utterance(store, key, dm.waves if waves is None else list(waves),
                          lambda w: utterance_functionals(frontend, w), "functionals")
