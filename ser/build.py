"""Everything a run is made of, built from its composed config: the corpus, the data module serving its
folds, the frontend and the model. Training, checkpoints, the baselines and the diagnosis build them here,
so a config means the same thing to each of them.
"""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ser.data.conditions import Conditions
from ser.data.datamodule import LoaderOptions, SERDataModule
from ser.data.decoded import DecodedCorpus
from ser.data.inject import Injection
from ser.data.serve import FoldPolicy
from ser.models.module import SERModule

# Keys of the ``data`` config that moved to the data module's own parts (``loader``, ``fold``, ``inject``,
# ``conditions``); configs stored by runs trained before are read with them moved (``upgrade``).
MOVED = {**{f"data.{k}": f"loader.{k}" for k in ("batch_size", "num_workers", "max_train_s", "max_eval_s", "sampler",
                                                 "balance", "pin_memory", "seed")},
         "data.train_fraction": "fold.train_fraction", "data.exclude": "fold.exclude",
         "data.inject": "inject", "data.conditions": "conditions"}
OLD_DATA_TARGET = "ser.data.datamodule.SERDataModule"


def build_corpus(cfg: DictConfig) -> DecodedCorpus:
    """The corpus of ``cfg.data``, not loaded yet (``load()`` reads it): what tools without folds need."""
    return instantiate(cfg.data)


def build_datamodule(cfg: DictConfig) -> SERDataModule:
    """The data module: ``cfg.data`` (the corpus), ``cfg.loader``, ``cfg.fold``, ``cfg.inject``, ``cfg.conditions``."""
    parts = {k: OmegaConf.to_container(cfg.get(k) or {}, resolve=True) for k in ("loader", "fold", "inject", "conditions")}
    return SERDataModule(build_corpus(cfg), LoaderOptions(**parts["loader"]), FoldPolicy(**parts["fold"]),
                         Injection(**parts["inject"]), Conditions(**parts["conditions"]))


def build_frontend(cfg: DictConfig):
    """The frontend of ``cfg.features`` and its normalisation mode (``features.normalize``, which configures the
    separate normalisation module, not the frontend) -> (frontend, mode)."""
    features = OmegaConf.to_container(cfg.features, resolve=True)
    normalize = features.pop("normalize", "global")
    return instantiate(features), normalize


def build_module(cfg: DictConfig, class_names: list[str], class_counts: list[int]) -> SERModule:
    """Frontend, normalisation, encoder, loss and optimizer from the config; the head is sized by the classes."""
    frontend, normalize = build_frontend(cfg)
    encoder = instantiate(cfg.model, in_features=frontend.out_features)
    return SERModule(
        frontend=frontend,
        encoder=encoder,
        loss=instantiate(cfg.loss, class_counts=class_counts),
        class_names=class_names,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        head_dropout=cfg.module.head_dropout,
        input_stats=cfg.module.get("input_stats", False),
        augment=instantiate(cfg.augment) if cfg.get("augment") else None,
        config=OmegaConf.to_container(cfg, resolve=True),
        normalize=normalize,
    )


def upgrade(cfg: DictConfig) -> DictConfig:
    """A run's stored config as today's code reads it: a config from before the data module was split (its
    ``data`` built the whole module) gets its loader, fold, inject and conditions keys moved (``MOVED``)."""
    if cfg.get("data", {}).get("_target_") != OLD_DATA_TARGET:
        return cfg
    cfg = cfg.copy()
    with open_dict(cfg):
        for old, new in MOVED.items():
            key = old.split(".", 1)[1]
            if key in cfg.data:
                OmegaConf.update(cfg, new, cfg.data.pop(key), force_add=True)
        cfg.data._target_ = "ser.data.decoded.DecodedCorpus"
    return cfg


def upgrade_overrides(overrides: list[str]) -> list[str]:
    """Command-line overrides of a run trained before the data module was split, with the moved keys renamed."""
    out = []
    for o in overrides:
        prefix = o[: len(o) - len(o.lstrip("+~"))]
        key, sep, value = o[len(prefix):].partition("=")
        moved = next((new + key[len(old):] for old, new in MOVED.items() if key == old or key.startswith(old + ".")), key)
        out.append(f"{prefix}{moved}{sep}{value}")
    return out
