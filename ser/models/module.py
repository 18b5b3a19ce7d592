"""The LightningModule: raw waves in, emotion logits out, the frontend inside the model."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from ser.features.normalize import FeatureNorm
from ser.models.head import Head
from ser.models.metrics import EmotionMetrics
from ser.models.pipeline import Pipeline
from ser.plots import confusion_figure

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


# Checkpoints from before the frontend was split kept the normalisation statistics in the
# frontend, and buffers derived from the settings (window, filterbank, DCT) in the state dict.
_MOVED = {f"frontend.{name}": f"normalizer.{name}" for name in ("mean", "std", "fitted", "speaker_mean", "speaker_std")}
_DERIVED = ("frontend.mel.", "frontend.dct")


def _upgrade_state_dict(module, state_dict, prefix, *args) -> None:
    """Load-state-dict pre hook: rename the keys of earlier checkpoints to today's layout."""
    if prefix + "temperature" not in state_dict:  # checkpoints from before temperature scaling: uncalibrated
        state_dict[prefix + "temperature"] = torch.tensor(1.0)
    if prefix + "normalizer.mean" in state_dict:
        return
    for old, new in _MOVED.items():
        if prefix + old in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)
    for key in [k for k in state_dict if k.startswith(tuple(prefix + d for d in _DERIVED))]:
        del state_dict[key]


class SERModule(Pipeline, L.LightningModule):
    """waves (B, T) -> frontend -> normalisation -> (B, F, T') -> encoder -> (B, D) -> head -> logits (B, C).

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
        normalize: the feature normalisation (``ser.features.normalize.FeatureNorm``); its statistics are
            handed to it before training (``ser.callbacks.FitFeatureNorm``).
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
        normalize: str = "global",
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["frontend", "encoder", "loss", "optimizer", "scheduler", "augment"])
        self.augment = augment
        self.frontend, self.encoder, self.loss = frontend, encoder, loss
        self.normalizer = FeatureNorm(normalize, frontend.out_features)
        self.register_load_state_dict_pre_hook(_upgrade_state_dict)
        stats = frontend.out_features if input_stats else 0
        self.head = Head(encoder.out_dim, len(class_names), head_dropout, input_stats=stats)
        # probabilities = softmax(logits / temperature), fitted after training on held-out speakers (ser.calibrate)
        self.register_buffer("temperature", torch.tensor(1.0))
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.class_names = list(class_names)
        self.train_metrics = EmotionMetrics(class_names, "train")
        self.val_metrics = EmotionMetrics(class_names, "val")
        self.test_metrics = EmotionMetrics(class_names, "test")
        self.corpus_metrics = nn.ModuleDict()  # data=multi: test metrics per corpus too (on_test_start)
        self.last_confusion: dict[str, torch.Tensor] = {}

    def on_train_epoch_start(self) -> None:
        self._epoch_started = time.monotonic()
        # Fine-tuning an upstream (features.freeze=false) starts after its warm-up epochs.
        if getattr(self.frontend, "freeze", True) is False:
            self.frontend.set_trainable(self.current_epoch >= self.frontend.warmup_epochs)

    # -- one step for every stage ------------------------------------------------------------
    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        augment = self.augment if stage == "train" else None
        if augment is not None and "waves" in batch:
            batch = dict(batch)
            batch["waves"], batch["lengths"] = augment.waves(batch["waves"], batch["lengths"])
        logits = self.forward_batch(batch, edit=augment.features if augment is not None else None)  # (B, C)
        loss = self.loss(logits, batch["labels"])
        if stage == "train" and not torch.isfinite(loss):
            self._stop_on_non_finite(loss)
        getattr(self, f"{stage}_metrics").update(logits.detach(), batch["labels"], loss)  # logged at epoch end
        if stage == "test":
            for k, metrics in enumerate(self.corpus_metrics.values()):
                chosen = batch["corpora"] == k
                if chosen.any():
                    metrics.update(logits.detach()[chosen], batch["labels"][chosen])
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
        if stage == "test" or stage == "val" and self._val_figure_due(float(scalars.get("val/ua", 0.0))):
            self._log_confusion(stage, self.last_confusion[stage])  # matplotlib reads host memory

    def _val_figure_due(self, ua: float) -> bool:
        """A validation confusion figure when val UA reaches a new best, and at the last epoch: drawing one
        every epoch took a third of a small model's training time."""
        best = getattr(self, "_best_val_ua", -1.0)
        self._best_val_ua = max(best, ua)
        last = self.trainer is not None and self.current_epoch + 1 >= (self.trainer.max_epochs or 0)
        return ua > best or last

    def on_train_epoch_end(self):
        self._epoch_end("train")
        self._log_epoch()

    def _log_epoch(self) -> None:
        """One line per epoch in the run's log (train.log): readable where no progress bar is (a file, a cluster job)."""
        if not self.trainer.is_global_zero or not hasattr(self, "_epoch_started"):
            return
        done, total = self.current_epoch + 1, self.trainer.max_epochs
        seconds = time.monotonic() - self._epoch_started
        m = self.trainer.callback_metrics
        parts = [f"epoch {done}/{total}"]
        parts += [f"train loss {float(m['train/loss']):.3f}"] if "train/loss" in m else []
        parts += [f"train UA {float(m['train/ua']):.3f}"] if "train/ua" in m else []
        parts += [f"val UA {float(m['val/ua']):.3f}"] if "val/ua" in m and self.trainer.val_dataloaders else []
        parts += [f"{seconds:.1f} s/epoch", f"about {seconds * (total - done) / 60:.1f} min left"]
        log.info("  ".join(parts))

    def on_validation_epoch_end(self):
        self._epoch_end("val")

    def on_test_start(self) -> None:
        # Several corpora (data=multi): test metrics per corpus as well, test/<corpus>/ua and so on.
        corpus = getattr(getattr(self.trainer, "datamodule", None), "corpus", None)
        names = list(getattr(corpus, "corpus_names", []))
        metrics = {name: EmotionMetrics(self.class_names, f"test/{name}") for name in names} if len(names) > 1 else {}
        self.corpus_metrics = nn.ModuleDict(metrics).to(self.device)

    def on_test_epoch_end(self):
        self._epoch_end("test")
        for metrics in self.corpus_metrics.values():
            with warnings.catch_warnings():  # a corpus with no test utterance (on this rank) was never updated
                warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method.*")
                scalars, confusion = metrics.compute()
            metrics.reset()
            if confusion.sum() > 0:  # only corpora that were tested
                self.log_dict(scalars)

    def _log_confusion(self, stage: str, confusion: torch.Tensor) -> None:
        writer = getattr(self.logger, "experiment", None)
        if self.trainer.sanity_checking or not hasattr(writer, "add_figure") or not self.trainer.is_global_zero:
            return
        figure = confusion_figure(confusion, self.class_names, f"{stage} confusion (epoch {self.current_epoch + 1})")
        writer.add_figure(f"{stage}/confusion_matrix", figure, self.global_step)

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        # A fine-tuned upstream learns at its own rate (features.lr); a frozen one is not optimised at all.
        net = getattr(self.frontend, "net", None)
        upstream = list(net.parameters()) if net is not None and not self.frontend.freeze else []
        tuned = {id(p) for p in upstream}
        rest = [p for p in self.parameters() if id(p) not in tuned and p.requires_grad]
        groups = [{"params": rest}] + ([{"params": upstream, "lr": self.frontend.lr}] if upstream else [])
        optimizer = self.optimizer_factory(groups)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
