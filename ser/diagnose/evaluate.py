"""Run a trained model over its fold: the test predictions every check reads, and the per-fold
measurements of the checks that need the model (noise, occlusion, the training speakers, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ser.data.upstream_cache import Upstream
from ser.diagnose.evidence import FoldResult
from ser.models.pipeline import predict as run
from ser.stats import ua


def predict(model, dm, indices: list[int], transform=None, edit=None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Class probabilities (N, C) and labels (N,) of these utterances as the current fold serves them
    (whole files, labels as the fold gives them; a frozen upstream's output from its cache, as in
    training), and their indices, in the loader's order (``ser.models.pipeline.predict``).

    ``transform(waves, lengths) -> waves`` changes each batch's audio first (e.g. adds noise); ``edit`` the
    normalised features (e.g. occludes rows).
    """
    got = run(model, dm.loader(indices, train=False, waves=transform is not None), transform=transform, edit=edit)
    probs = model.probabilities(got.logits.to(model.temperature.device)).float().cpu()  # calibrated, as ser.predict
    return probs.numpy(), got.labels.numpy(), [indices[i] for i in got.index]


@dataclass
class FoldView:
    """One fold's trained model on its data, for the checks' ``per_fold`` measurements."""

    model: object
    dm: object
    fold: object  # the fold as served (``dm.fold``: injected faults applied)
    result: FoldResult
    options: object
    _predicted: dict = field(default_factory=dict)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def predictions_on(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """The model's predicted classes and the labels of the fold's ``train`` or ``val`` utterances (eval mode,
        whole files, labels as training saw them); empty for an empty part. Predicted once per fold, shared between
        checks."""
        if part not in self._predicted:
            indices = getattr(self.fold, part)
            if not indices:
                self._predicted[part] = (np.zeros(0, int), np.zeros(0, int), [])
            else:
                probs, labels, got = predict(self.model, self.dm, indices)
                self._predicted[part] = (probs.argmax(1), labels, got)
        return self._predicted[part][:2]

    def order_on(self, part: str) -> list[int]:
        """The utterance indices ``predictions_on(part)`` answers for, in its order."""
        self.predictions_on(part)
        return self._predicted[part][2]

    def ua_on(self, part: str) -> float:
        """The model's UA on the fold's ``train`` or ``val`` utterances (``predictions_on``); NaN for an empty part."""
        preds, labels = self.predictions_on(part)
        return ua(labels, preds, len(self.model.class_names)) if len(labels) else float("nan")


def evaluate_fold(model, dm, fold, checks, options) -> FoldResult:
    """The fold's test predictions with ``model`` (eval mode), then each check's ``per_fold`` measurement."""
    dm.use_fold(fold)
    served = dm.fold
    # a frozen upstream: its cached output, as training read it (waves for other frontends)
    dm.use_upstream(Upstream.of(model.frontend, next(model.parameters()).device, dm.corpus.upstream_cache))
    probs, labels, index = predict(model, dm, served.test)
    utts = [dm.corpus.utterances[i] for i in index]
    corpus = [dm.corpus.corpus_of(u) for u in dm.corpus.utterances]
    result = FoldResult(
        fold=served.name,
        index=index,
        probs=probs,
        labels=labels,
        paths=[u.path for u in utts],
        speakers=[u.speaker for u in utts],
        genders=[str(u.extras.get("gender", "")) for u in utts],
        durations=np.array([dm.corpus.duration(i) for i in index]),
        train_counts=dm.train_class_counts(),
        cross_corpus=bool(served.test) and not {corpus[i] for i in served.test} & {corpus[i] for i in served.train},
    )
    view = FoldView(model, dm, served, result, options)
    state = torch.random.get_rng_state()
    for check in checks:
        torch.manual_seed(options.seed)  # the same noise for every model and check order
        measured = check.per_fold(view)
        if measured is not None:
            result.extra[check.name] = measured
    torch.random.set_rng_state(state)
    return result
