"""Shared fixtures: the real Hydra config, composed and shrunk for CPU tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
EMODB = Path(os.environ.get("SER_EMODB", ROOT.parent / "shared" / "data" / "emodb"))


def compose_config(overrides: list[str], output_dir: Path, cache_dir: Path) -> DictConfig:
    """``conf/train.yaml`` with overrides, writing to ``output_dir``, caching in ``cache_dir``."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.cache_dir = str(cache_dir)
    return cfg


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache per test session, so each synthetic corpus is generated once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_cfg(tmp_path, cache_dir):
    """``make_cfg("model=cnn", ...)`` -> a composed config writing under ``tmp_path/run``."""

    def make(*overrides: str) -> DictConfig:
        return compose_config(list(overrides), tmp_path / "run", cache_dir)

    return make
