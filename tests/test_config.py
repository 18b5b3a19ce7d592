"""The config composes, and mistakes in it fail with a message that says what is available."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.utils import instantiate

from ser.build import build_frontend

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_defaults_compose_and_instantiate(make_cfg):
    cfg = make_cfg()
    assert cfg.model._target_.endswith("LSTMEncoder")
    assert cfg.data.corpus._target_.endswith("SyntheticCorpus")
    frontend, normalize = build_frontend(cfg)
    assert frontend.out_features == 64 and normalize == "global"


@pytest.mark.parametrize("group", sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra"))
def test_every_option_of_every_group_composes(make_cfg, group):
    for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
        make_cfg(f"{group}={option}")


def test_unknown_model_lists_the_available_ones(make_cfg):
    with pytest.raises(MissingConfigException) as err:
        make_cfg("model=transformer")
    message = str(err.value)
    assert "transformer" in message and "cnn_lstm" in message and "lstm" in message


def test_misspelt_key_is_named(make_cfg):
    with pytest.raises(ConfigCompositionException, match="hiden"):
        make_cfg("model.hiden=64")


def test_unknown_encoder_argument_is_named(make_cfg):
    cfg = make_cfg("+model.hiden=64")
    with pytest.raises(Exception, match="hiden"):
        instantiate(cfg.model, in_features=64)


def test_ddp_on_cpu_ranks_turns_batchnorm_syncing_off(make_cfg):
    """SyncBatchNorm needs GPUs: a CNN under trainer=ddp on CPU ranks would stop at its first step."""
    from ser.train import cpu_batchnorm

    cfg = make_cfg("trainer=ddp", "trainer.accelerator=cpu", "model=cnn")
    assert cfg.trainer.sync_batchnorm
    cpu_batchnorm(cfg)
    assert cfg.trainer.sync_batchnorm is False
    gpu = make_cfg("trainer=ddp", "trainer.accelerator=gpu")
    cpu_batchnorm(gpu)
    assert gpu.trainer.sync_batchnorm  # GPUs keep it


def test_a_run_stored_before_the_data_module_was_split_reads_as_today():
    """Runs trained with the old flat data config (its _target_ the data module) still diagnose and verify."""
    from omegaconf import OmegaConf

    from ser.build import upgrade, upgrade_overrides

    old = OmegaConf.create({"data": {"_target_": "ser.data.datamodule.SERDataModule", "root": "/x", "batch_size": 16,
                                     "sampler": "balanced", "exclude": "s.csv", "inject": {"label_noise": 0.3},
                                     "conditions": {"copies": 2}, "seed": 7}})
    new = upgrade(old)
    assert new.data._target_ == "ser.data.decoded.DecodedCorpus" and set(new.data) == {"_target_", "root"}
    assert new.loader == {"batch_size": 16, "sampler": "balanced", "seed": 7} and new.fold.exclude == "s.csv"
    assert new.inject.label_noise == 0.3 and new.conditions.copies == 2
    assert upgrade(new) is new
    assert upgrade_overrides(["data.batch_size=8", "+data.exclude=a.csv", "data.root=/y", "data.inject.test_noise=pink"]) \
        == ["loader.batch_size=8", "+fold.exclude=a.csv", "data.root=/y", "inject.test_noise=pink"]
