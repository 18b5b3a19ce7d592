"""Every encoder config: shapes, finiteness, gradients, and batch-padding invariance."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from ser.build import build_module
from ser.nn import Moments

MODELS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "model").glob("*.yaml"))
FEATURES = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "features").glob("*.yaml"))


def test_there_are_three_encoders():
    assert {"cnn", "lstm", "cnn_lstm"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_encoder_maps_bft_to_bd_with_gradients(make_cfg, name):
    torch.manual_seed(0)
    encoder = instantiate(make_cfg(f"model={name}").model, in_features=64)
    feats, lengths = torch.randn(3, 64, 120), torch.tensor([120, 77, 31])
    emb = encoder(feats, lengths)
    assert emb.shape == (3, encoder.out_dim)
    assert torch.isfinite(emb).all()
    emb.pow(2).sum().backward()
    no_grad = [n for n, p in encoder.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad}"
    assert all(p.grad.abs().sum() > 0 for p in encoder.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_encoder_padding_does_not_change_a_clip(make_cfg, name):
    torch.manual_seed(0)
    encoder = instantiate(make_cfg(f"model={name}").model, in_features=64).eval()
    lengths = torch.tensor([120, 77, 31])
    feats = torch.randn(3, 64, 120) * (torch.arange(120)[None, :] < lengths[:, None])[:, None, :]
    with torch.no_grad():
        batch = encoder(feats, lengths)
        alone = torch.cat([encoder(feats[i : i + 1, :, :n], lengths[i : i + 1]) for i, n in enumerate(lengths)])
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("rows", [2, 4, 5])
@pytest.mark.parametrize("name", MODELS)
def test_every_encoder_takes_a_few_feature_rows(make_cfg, name, rows):
    """4 MFCCs (the weak-features study) under the conv encoders' shipped depth: F stops halving at one row."""
    depth = ["model.depth=3"] if name.startswith("cnn") else []  # the CNN's own; cnn_lstm ships 2
    encoder = instantiate(make_cfg(f"model={name}", *depth).model, in_features=rows)
    emb = encoder(torch.randn(2, rows, 90), torch.tensor([90, 40]))
    assert emb.shape == (2, encoder.out_dim) and torch.isfinite(emb).all()


@pytest.mark.parametrize("features", FEATURES)
@pytest.mark.parametrize("name", MODELS)
def test_whole_model_on_waves_is_padding_invariant(make_cfg, name, features, tiny_ssl):
    torch.manual_seed(0)
    extra = [f"features.model={tiny_ssl}"] if features == "ssl" else []  # a tiny random local model
    module = build_module(make_cfg(f"model={name}", f"features={features}", *extra), ["a", "b", "c"], [3, 2, 1]).eval()
    assert_padding_invariant(module)


def assert_padding_invariant(module) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of three zero-padded clips in one batch equal each clip's alone; returns the waves and lengths."""
    lengths = torch.tensor([16000, 9100, 4000])
    waves = torch.randn(3, 16000) * (torch.arange(16000)[None, :] < lengths[:, None])
    module.normalizer.fit(Moments.of([(*module.frontend(waves, lengths), None)], 1, module.frontend.out_features))
    with torch.no_grad():
        batch = module(waves, lengths)
        alone = torch.cat([module(waves[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths)])
    assert batch.shape == (3, 3)
    torch.testing.assert_close(batch, alone, atol=1e-4, rtol=1e-4)
    return waves, lengths


def test_input_stats_head_sees_the_feature_statistics_and_ignores_padding(make_cfg):
    torch.manual_seed(0)
    cfg = make_cfg("model=cnn_lstm", "module.input_stats=true")
    module = build_module(cfg, ["a", "b", "c"], [3, 2, 1]).eval()
    rows = module.frontend.out_features
    assert module.head[1].in_features == module.encoder.out_dim + 2 * rows
    waves, lengths = assert_padding_invariant(module)
    with torch.no_grad():
        # the statistics path alone moves the logits: zero the encoder's columns of the linear layer
        module.head[1].weight[:, : module.encoder.out_dim] = 0
        quiet = module(waves * 0.1, lengths)
        assert not torch.allclose(quiet, module(waves, lengths), atol=1e-3)
    # an embedding-only head keeps the old state-dict keys, so older checkpoints load
    assert {"head.1.weight", "head.1.bias"} <= set(build_module(make_cfg(), ["a", "b"], [1, 1]).state_dict())


def test_ua_averages_only_the_classes_the_labels_hold():
    from ser.models.metrics import EmotionMetrics

    metrics = EmotionMetrics(["anger", "disgust", "neutral"], "test")
    # no disgust among the labels, but one utterance predicted as disgust (as for EmoDB's speaker 08)
    labels, preds = torch.tensor([0, 0, 2, 2]), torch.tensor([0, 1, 2, 2])
    metrics.update(torch.nn.functional.one_hot(preds, 3).float(), labels)
    scalars, counts = metrics.compute()
    assert scalars["test/ua"] == pytest.approx((0.5 + 1.0) / 2)  # torchmetrics' macro recall says 0.5
    assert scalars["test/wa"] == pytest.approx(0.75)
    assert scalars["test/macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)  # anger P 1 R .5, neutral P 1 R 1; no disgust term
    assert counts.sum() == 4
    # one definition everywhere: the baselines, the diagnosis and the CV summary count the same
    from ser.baselines.run import metrics_of
    from ser.cv import summarize
    from ser.stats import ua

    names = ["anger", "disgust", "neutral"]
    baseline, _ = metrics_of(labels.numpy(), preds.numpy(), names)
    assert baseline["test/ua"] == pytest.approx(scalars["test/ua"]) == ua(labels.numpy(), preds.numpy(), 3)
    assert baseline["test/macro_f1"] == pytest.approx(scalars["test/macro_f1"])
    pooled = summarize([{"fold": "f", "test_speakers": [], "metrics": scalars, "confusion": counts.tolist()}], names)
    assert pooled["pooled"]["ua"] == pytest.approx(scalars["test/ua"])
