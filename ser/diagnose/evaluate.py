"""Run a trained model over its fold's test split: clean, with noise added, and with inputs occluded."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ser.diagnose.analysis import ua
from ser.features.augment import add_noise


@dataclass
class FoldResult:
    """Everything the report needs from one fold's test split (one row per test utterance)."""

    fold: str
    probs: np.ndarray  # (N, C) clean-input class probabilities
    labels: np.ndarray  # (N,)
    paths: list[str]
    speakers: list[str]
    genders: list[str]
    durations: np.ndarray  # (N,) seconds, whole file
    train_counts: list[int]  # training utterances per class in this fold
    noise_ua: dict[float, float] = field(default_factory=dict)  # SNR dB -> UA
    occlusion: dict[str, float] = field(default_factory=dict)  # feature group -> UA with it occluded
    train_ua: float | None = None  # UA on the fold's training utterances, eval mode, whole utterances
    shift: dict | None = None  # cross-corpus folds only: see ``corpus_shift``


@torch.no_grad()
def evaluate_fold(model, dm, fold, snrs=(40, 20, 10, 5, 0), seed: int = 0, occlude: bool = True) -> FoldResult:
    """Predict the fold's test split with ``model`` (eval mode) on the data module ``dm``.

    Noise: white noise at each SNR over each utterance's valid samples (seeded, the same noise for
    every model). Occlusion: each feature group's rows set to 0 (the training mean under global or
    per-speaker normalisation) before the encoder.
    """
    dm.use_fold(fold)
    device = next(model.parameters()).device
    n_classes = len(model.class_names)
    groups = model.frontend.row_groups() if occlude else {}
    probs, labels, index = [], [], []
    noisy = {snr: [] for snr in snrs}
    occluded = {g: [] for g in groups}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    for batch in dm.test_dataloader():
        waves, lengths = batch["waves"].to(device), batch["lengths"].to(device)
        speakers = model.groups_of({k: v.to(device) for k, v in batch.items()})
        probs.append(model(waves, lengths, speakers).softmax(-1).float().cpu())
        labels.append(batch["labels"])
        index.append(batch["index"])
        for snr in snrs:
            loud = add_noise(waves, lengths, torch.full((len(waves),), float(snr), device=device), "white")
            noisy[snr].append(model(loud, lengths, speakers).argmax(-1).cpu())
        if groups:
            feats, frames = model.features(waves, lengths, speakers)
            for name, rows in groups.items():
                hidden = feats.clone()
                hidden[:, rows] = 0.0
                occluded[name].append(model.classify(hidden, frames).argmax(-1).cpu())
    torch.random.set_rng_state(generator_state)
    train_ua = split_ua(model, dm, fold.train, device) if fold.train else None
    probs, labels = torch.cat(probs).numpy(), torch.cat(labels).numpy()
    utts = [dm.utterances[fold.test[i]] for i in torch.cat(index).tolist()]
    return FoldResult(
        fold=fold.name,
        probs=probs,
        labels=labels,
        paths=[u.path for u in utts],
        speakers=[u.speaker for u in utts],
        genders=[str(u.extras.get("gender", "")) for u in utts],
        durations=np.array([dm.waves[fold.test[i]].numel() / dm.sample_rate for i in torch.cat(index).tolist()]),
        train_counts=dm.train_class_counts(),
        noise_ua={float(s): ua(labels, torch.cat(p).numpy(), n_classes) for s, p in noisy.items()},
        occlusion={g: ua(labels, torch.cat(p).numpy(), n_classes) for g, p in occluded.items()},
        shift=corpus_shift(model, dm, fold, device),
        train_ua=train_ua,
    )


def split_ua(model, dm, indices: list[int], device) -> float:
    """UA of ``model`` in eval mode on utterances of the data module (whole, unaugmented): the fitting
    measure, comparable with the test UA, unlike the training curve (dropout, random crops)."""
    labels, preds = [], []
    for batch in dm._loader(indices, train=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        preds.append(model(batch["waves"], batch["lengths"], model.groups_of(batch)).argmax(-1).cpu())
        labels.append(batch["labels"].cpu())
    return ua(torch.cat(labels).numpy(), torch.cat(preds).numpy(), len(model.class_names))


def corpus_shift(model, dm, fold, device) -> dict | None:
    """For a fold whose test corpora were not trained on: the in-domain reference and the embeddings.

    In-domain: the fold's validation speakers (held-out speakers of the training corpora), predicted
    by the same model. Embeddings: the encoder's output (B, D) for validation and test utterances
    (training utterances when there is no validation), with each one's corpus, for the corpus
    classifier. None for folds tested on corpora they also trained on.
    """
    corpus = [dm.utterance_corpus(u) for u in dm.utterances]
    trained = sorted({corpus[i] for i in fold.train})
    tested = sorted({corpus[i] for i in fold.test})
    if not all(tested) or set(tested) & set(trained):
        return None
    reference = dm.val_dataloader() if fold.val else dm._loader(fold.train, train=False)
    out = {"train_corpora": trained, "test_corpora": tested, "in_domain_from": "validation" if fold.val else "training"}
    sides = (("in_domain", reference, fold.val or fold.train), ("cross", dm.test_dataloader(), fold.test))
    for part, loader, indices in sides:
        labels, preds, embeddings, which = [], [], [], []
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            feats, frames = model.features(batch["waves"], batch["lengths"], model.groups_of(batch))
            emb = model.encoder(feats, frames)  # (B, D)
            preds.append(model.head(emb, feats, frames).argmax(-1).cpu())
            labels.append(batch["labels"].cpu())
            embeddings.append(emb.float().cpu())
            which += [corpus[indices[i]] for i in batch["index"].tolist()]
        out[part] = {"labels": torch.cat(labels).numpy(), "preds": torch.cat(preds).numpy(),
                     "embeddings": torch.cat(embeddings).numpy(), "corpus": which}
    return out
