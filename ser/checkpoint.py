"""Rebuild a trained model from its checkpoint alone (the resolved config travels inside it)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from ser.build import build_module
from ser.models.module import SERModule


def load_model(path: str | Path, device: str | torch.device = "cpu") -> SERModule:
    """A checkpoint written by ``python train.py`` -> the model in eval mode, frontend included.

    Loaded with ``weights_only=True``: a checkpoint cannot run code when it is opened.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt={path}: no such checkpoint (look in <run dir>/checkpoints/)")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    hp = ckpt.get("hyper_parameters", {})
    if "config" not in hp or "class_names" not in hp:
        raise ValueError(f"ckpt={path}: not a ser checkpoint (no stored config and class names)")
    cfg = OmegaConf.create(hp["config"])
    names = list(hp["class_names"])
    model = build_module(cfg, names, [1] * len(names))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()
