"""Shared fixtures: the real Hydra config, composed and shrunk for CPU tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

# Nothing in the suite downloads: transformers and huggingface_hub read these when first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Under pytest-xdist (make test runs one worker per core) each worker gets its share of the cores,
# so that parallel trainings do not thrash each other's threads.
# Processes the tests start (a notebook kernel, DDP ranks, sweep jobs) inherit the limit.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    torch.set_num_threads(THREADS)
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
EMODB = Path(os.environ.get("SER_EMODB", ROOT.parent / "shared" / "data" / "emodb"))
SAVEE = Path(os.environ.get("SER_SAVEE", ROOT.parent / "shared" / "data" / "savee"))


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


def save_tiny_ssl(folder: Path, model_type: str = "wav2vec2", norm: str = "layer") -> Path:
    """A randomly initialised, tiny ``transformers`` speech model saved with ``save_pretrained`` (no download).

    Two transformer layers of width 16 over a 3-layer CNN with an 80-sample stride (5 ms frames).
    """
    import transformers as tf

    config_cls = {"wav2vec2": tf.Wav2Vec2Config, "hubert": tf.HubertConfig, "wavlm": tf.WavLMConfig,
                  "data2vec-audio": tf.Data2VecAudioConfig}[model_type]
    config = config_cls(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                        conv_dim=(8, 8, 8), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), num_conv_pos_embeddings=8,
                        num_conv_pos_embedding_groups=2, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer",
                        num_buckets=8, max_bucket_distance=20, conv_pos_kernel_size=5)  # WavLM, data2vec
    torch.manual_seed(0)
    tf.AutoModel.from_config(config).save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=norm == "layer"
                                ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_ssl(tmp_path_factory) -> Path:
    """A tiny random wav2vec2 (layer norm, attention masks) in a local folder."""
    return save_tiny_ssl(tmp_path_factory.mktemp("tiny_wav2vec2"))


def pytest_collection_modifyitems(items):
    """Tests marked ``slow`` run first: pytest-xdist deals the first tests out to its workers one by one, so the long
    ones are shared out before the many short ones even out the end (started last, one kept a core busy alone)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
