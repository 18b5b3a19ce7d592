"""The LightningModule: raw waves in, emotion logits out, the frontend inside the model."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from ser.models.head import Head
from ser.models.metrics import EmotionMetrics

STAGES = ("train", "val", "test")


class SERModule(L.LightningModule):
    """waves (B, T) -> frontend -> (B, F, T') -> encoder -> (B, D) -> head -> logits (B, C).

    Args:
        frontend: waves and lengths -> features (B, F, T') and frame lengths (``ser.features``).
        encoder: features and frame lengths -> (B, D), with ``out_dim``.
        loss: logits and labels -> scalar.
        class_names: the label of each logit, in order.
        optimizer: ``params -> Optimizer`` (Hydra ``_partial_``).
        scheduler: ``(optimizer, total_steps) -> LRScheduler`` stepped every batch, or None.
        head_dropout: dropout before the linear head.
        input_stats: also feed the mean and std of the input features to the head (``ser.models.head``).
        augment: training-time augmentation with ``waves`` and ``features`` steps (``ser.features.augment``), or None.
        config: the resolved run config, stored in checkpoints so a model can be rebuilt from it.
    """

    def __init__(
        self,
        frontend: nn.Module,
        encoder: nn.Module,
        loss: nn.Module,
        class_names: list[str],
        optimizer: Callable,
        scheduler: Callable | None = None,
        head_dropout: float = 0.0,
        input_stats: bool = False,
        augment: nn.Module | None = None,
        config: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["frontend", "encoder", "loss", "optimizer", "scheduler", "augment"])
        self.augment = augment
        self.frontend, self.encoder, self.loss = frontend, encoder, loss
        stats = frontend.out_features if input_stats else 0
        self.head = Head(encoder.out_dim, len(class_names), head_dropout, input_stats=stats)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.class_names = list(class_names)
        self.train_metrics = EmotionMetrics(class_names, "train")
        self.val_metrics = EmotionMetrics(class_names, "val")
        self.test_metrics = EmotionMetrics(class_names, "test")
        self.last_confusion: dict[str, torch.Tensor] = {}

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor | None = None) -> torch.Tensor:
        """waves (B, T), lengths (B,) in samples -> logits (B, C); ``speakers`` only for normalize=speaker."""
        feats, frames = self.frontend(waves, lengths, speakers)  # (B, F, T'), (B,)
        emb = self.encoder(feats, frames)  # (B, D)
        return self.head(emb, feats, frames)  # (B, C)

    def on_fit_start(self) -> None:
        # Global feature statistics come from the training split only (never val or test speakers).
        normalize = getattr(self.frontend, "normalize", None)
        if normalize in ("global", "speaker") and not self.frontend.fitted:
            self.frontend.fit_stats(self.trainer.datamodule.train_dataloader())
        if normalize == "speaker" and not len(self.frontend.speaker_mean):
            # Transductive: each speaker's statistics, test speakers included, from their unlabelled audio.
            dm = self.trainer.datamodule
            self.frontend.fit_speaker_stats(dm.speaker_dataloader(), len(dm.speakers))

    # -- one step for every stage ------------------------------------------------------------
    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        if stage == "train" and self.augment is not None:
            waves, lengths = self.augment.waves(batch["waves"], batch["lengths"])
            feats, frames = self.frontend(waves, lengths, batch.get("speakers"))  # (B, F, T'), (B,)
            feats = self.augment.features(feats, frames)
            logits = self.head(self.encoder(feats, frames), feats, frames)
        else:
            logits = self(batch["waves"], batch["lengths"], batch.get("speakers"))
        loss = self.loss(logits, batch["labels"])
        if stage == "train" and not torch.isfinite(loss):
            self._stop_on_non_finite(loss)
        getattr(self, f"{stage}_metrics").update(logits.detach(), batch["labels"], loss)  # logged at epoch end
        return loss

    def _stop_on_non_finite(self, loss: torch.Tensor) -> None:
        ckpt = getattr(self.trainer.checkpoint_callback, "dirpath", None)
        raise FloatingPointError(
            f"training loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: training stopped "
            f"before this step could change the weights. The last good checkpoint is in {ckpt or 'the run directory'} "
            "(last.ckpt, from the end of the last finished epoch). Try a lower optimizer.lr, trainer.gradient_clip_val, "
            "or trainer.precision=32; resume=true continues from that checkpoint."
        )

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def _epoch_end(self, stage: str) -> None:
        metrics = getattr(self, f"{stage}_metrics")
        scalars, confusion = metrics.compute()
        metrics.reset()
        self.log_dict(scalars)
        self.last_confusion[stage] = confusion.cpu()
        if stage != "train":
            self._log_confusion(stage, confusion)

    def on_train_epoch_end(self):
        self._epoch_end("train")

    def on_validation_epoch_end(self):
        self._epoch_end("val")

    def on_test_epoch_end(self):
        self._epoch_end("test")

    def _log_confusion(self, stage: str, confusion: torch.Tensor) -> None:
        writer = getattr(self.logger, "experiment", None)
        if self.trainer.sanity_checking or not hasattr(writer, "add_figure") or not self.trainer.is_global_zero:
            return
        from ser.plots import confusion_figure

        figure = confusion_figure(confusion, self.class_names, f"{stage} confusion (epoch {self.current_epoch})")
        writer.add_figure(f"{stage}/confusion_matrix", figure, self.global_step)

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
