"""The one path from waves to logits, and the one loop that runs it over a loader (torch only, so
``ser.export`` loads without Lightning).

Shapes (B clips, T samples, F feature rows, T' frames, D embedding, C classes):

- ``features``: waves (B, T), lengths (B,) -> normalised feats (B, F, T'), frames (B,)
- ``classify``: feats (B, F, T'), frames (B,) -> logits (B, C)
- ``forward_batch``: a loader's batch (waves, or a frozen upstream's cached frames) -> logits (B, C)
  [and the embedding (B, D) the head reads]
- ``predict``: every batch of a loader, in eval mode -> ``Predictions`` (N rows)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ser.features.normalize import FeatureNorm

Edit = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (feats (B, F, T'), frames (B,)) -> feats (B, F, T')


class Pipeline:
    """The one path from waves to logits, shared by training, ``ser.export`` and ``ser.diagnose``:
    ``features`` (frontend, then normalisation) and ``classify`` (encoder, then head)."""

    frontend: nn.Module
    normalizer: FeatureNorm
    encoder: nn.Module
    head: nn.Module
    temperature: torch.Tensor  # a scalar buffer: 1 until ``ser.calibrate`` fits it on held-out speakers

    def features(self, waves: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor | None = None):
        """waves (B, T), lengths (B,) in samples -> normalised feats (B, F, T'), frames (B,);
        ``speakers`` (B,): the group index of each clip, only for normalize=speaker|corpus (``groups_of``)."""
        feats, frames = self.frontend(waves, lengths)  # (B, F, T'), (B,)
        return self.normalizer(feats, frames, speakers), frames

    def classify(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """feats (B, F, T'), frames (B,) -> logits (B, C)."""
        return self.embed_and_classify(feats, frames)[0]

    def embed_and_classify(self, feats: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, F, T'), frames (B,) -> logits (B, C) and the encoder's embedding (B, D)."""
        emb = self.encoder(feats, frames)  # (B, D)
        return self.head(emb, feats, frames), emb  # (B, C), (B, D)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor | None = None) -> torch.Tensor:
        """waves (B, T), lengths (B,) in samples -> logits (B, C)."""
        return self.classify(*self.features(waves, lengths, speakers))

    def frontend_features(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's features before normalisation, (B, F, T') and frames (B,): from its waves, or, for a
        frozen upstream, from the cached upstream output the data module put in the batch (``feats``)."""
        if "feats" in batch:
            return self.frontend.from_cache(batch["feats"], batch["frames"])
        return self.frontend(batch["waves"], batch["lengths"])

    def batch_features(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch -> normalised feats (B, F, T'), frames (B,)."""
        feats, frames = self.frontend_features(batch)  # (B, F, T'), (B,)
        return self.normalizer(feats, frames, self.groups_of(batch)), frames

    def forward_batch(self, batch: dict[str, torch.Tensor], embedding: bool = False, edit: Edit | None = None):
        """A batch (waves and lengths, or cached ``feats`` and ``frames``) -> logits (B, C), and with ``embedding``
        the encoder's (B, D) too. ``edit`` changes the normalised features before the encoder (augmentation in
        training, occlusion in the diagnosis)."""
        feats, frames = self.batch_features(batch)
        if edit is not None:
            feats = edit(feats, frames)
        logits, emb = self.embed_and_classify(feats, frames)
        return (logits, emb) if embedding else logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (B, C) -> calibrated class probabilities (B, C): softmax(logits / temperature)."""
        return (logits / self.temperature).softmax(-1)

    def groups_of(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The batch's group indices that the normalisation reads (speakers or corpora; None for none)."""
        key = self.normalizer.group_key
        return batch.get(key) if key else None


@dataclass
class Predictions:
    """A loader's rows in its order: ``logits`` (N, C) float32, ``labels`` (N,), ``index`` (the dataset position of
    each row: ``batch["index"]``), and ``embeddings`` (N, D) where asked for."""

    logits: torch.Tensor
    labels: torch.Tensor
    index: list[int]
    embeddings: torch.Tensor | None = None


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """``model`` in eval mode without gradients inside the block, in the mode it was in after it."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def predict(model: Pipeline, loader: Iterable[dict[str, torch.Tensor]], transform=None, edit: Edit | None = None,
            embeddings: bool = False) -> Predictions:
    """Every batch of ``loader`` through ``model`` in eval mode, on the model's device.

    ``transform(waves, lengths) -> waves`` changes each batch's audio first (noise added, say; the loader must
    serve waves); ``edit`` changes the normalised features (``forward_batch``); ``embeddings`` keeps the (B, D)
    embedding of every row.
    """
    device = next(model.parameters()).device
    logits, labels, index, embedded = [], [], [], []
    with evaluating(model):
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            if transform is not None:
                batch["waves"] = transform(batch["waves"], batch["lengths"])
            out, emb = model.forward_batch(batch, embedding=True, edit=edit)
            logits.append(out.float().cpu())
            labels.append(batch["labels"].cpu())
            index += batch["index"].tolist()
            if embeddings:
                embedded.append(emb.float().cpu())
    return Predictions(torch.cat(logits), torch.cat(labels), index, torch.cat(embedded) if embeddings else None)
