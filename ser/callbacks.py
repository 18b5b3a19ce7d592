"""Lightning callbacks of this project."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch

from ser import rundir
from ser.models.pipeline import predict
from ser.nn import Moments, Standardize

log = logging.getLogger(__name__)



class FitFeatureNorm(L.Callback):
    """Hand the model's normalisation modules their statistics before training starts.

    ``features.normalize=global``: per-row mean and std over the training split's frames (never
    validation or test speakers). ``speaker``: also each speaker's own, from every utterance of the
    fold, test speakers included, without labels (transductive); ``corpus``: each corpus's own, likewise
    (a test corpus's unlabelled audio included: transductive). Then every ``Standardize`` inside
    the model (``model.standardize=true``): the moments of its input over the training split.
    Statistics already in the model (a resumed run) are kept. ``ser.train`` adds this callback to every run.
    """

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        norm, dm = pl_module.normalizer, trainer.datamodule
        if norm.needs_fit:
            norm.fit(self.moments(pl_module, dm.train_dataloader(), groups=1))
        if norm.needs_speakers:
            groups = len(dm.corpus.speakers) if norm.group_key == "speakers" else len(dm.corpus.corpus_names)
            norm.fit_speakers(self.moments(pl_module, dm.speaker_dataloader(), groups=groups, key=norm.group_key))
        for module in pl_module.modules():
            if isinstance(module, Standardize) and not module.fitted:
                module.fit(self.input_moments(pl_module, module, dm.train_dataloader()))

    @staticmethod
    @torch.no_grad()
    def input_moments(pl_module: L.LightningModule, module: Standardize, loader) -> Moments:
        """The moments of ``module``'s (B, D) input while the model (in eval mode) classifies ``loader``."""
        moments = Moments(1, len(module.mean), pl_module.device)

        def collect(_module, inputs, _output):
            x = inputs[0][..., None]  # (B, D) -> (B, D, 1): one frame per clip
            moments.add(x, torch.ones(len(x), dtype=torch.long, device=x.device))

        hook = module.register_forward_hook(collect)
        try:
            predict(pl_module, loader)  # the hook collects; the predictions are not needed
        finally:
            hook.remove()
        return moments.all_reduce()

    @staticmethod
    @torch.no_grad()
    def moments(pl_module: L.LightningModule, loader, groups: int, key: str | None = None) -> Moments:
        """The frontend's features over ``loader`` (before normalisation), grouped by ``batch[key]``."""
        device = pl_module.device

        def pairs():
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                feats, frames = pl_module.frontend_features(batch)
                yield feats, frames, batch[key] if key else None

        return Moments.of(pairs(), groups, pl_module.frontend.out_features, device)


class AverageLastEpochs(L.Callback):
    """Average the weights at the end of each of the last ``epochs`` training epochs, then test that.

    Stochastic weight averaging over the tail of the cosine schedule, without a schedule of its own:
    on small corpora the average generalises better to a new speaker than the one checkpoint that
    scored best on a single validation speaker. Every floating-point tensor of the state dict is
    averaged (in float64), so BatchNorm statistics follow the weights and constants such as the
    feature statistics stay as they are. At the end of training the average is loaded into the model
    and written to ``<dirpath>/averaged.ckpt``; ``ser.train`` then tests it instead of the best
    checkpoint, and ``ser.diagnose`` reads it. The running sum travels in checkpoints, so
    ``resume=true`` continues it.

    Args:
        epochs: how many final epochs to average (clipped to ``trainer.max_epochs``).
        dirpath: where to write ``averaged.ckpt`` (the run's ``checkpoints/``).
    """

    def __init__(self, epochs: int = 10, dirpath: str | None = None):
        if epochs < 1:
            raise ValueError(f"callbacks.average.epochs must be at least 1, got {epochs}")
        self.epochs, self.dirpath = epochs, dirpath
        self.total: dict[str, torch.Tensor] = {}
        self.count = 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch < trainer.max_epochs - self.epochs:
            return
        for name, value in pl_module.state_dict().items():
            if value.is_floating_point():
                value = value.detach().double()
                self.total[name] = self.total[name] + value if name in self.total else value.clone()
        self.count += 1

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.count:
            log.warning("callbacks.average: no epoch was averaged; testing the best checkpoint instead")
            return
        state = pl_module.state_dict()
        with torch.no_grad():
            for name, total in self.total.items():
                state[name].copy_(total / self.count)
        log.info("averaged the weights of the last %d epochs", self.count)
        trainer.save_checkpoint(self.path, weights_only=True)  # for testing and export: no optimizer state to carry

    @property
    def path(self) -> Path:
        return Path(self.dirpath or ".") / rundir.AVERAGED

    def state_dict(self) -> dict:
        return {"total": self.total, "count": self.count}

    def load_state_dict(self, state_dict: dict) -> None:
        self.total, self.count = dict(state_dict["total"]), int(state_dict["count"])
