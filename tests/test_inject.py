"""Faults injected on purpose (``inject.*``): each changes what it names, on the side it names, and the
run records it."""

import csv
from collections import Counter

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from ser.build import build_datamodule
from ser.data.inject import CONFUSABLE, Injection, degrade


def _fold(make_cfg, *overrides, speakers: int = 6):
    cfg = make_cfg("debug=smoke", f"data.corpus.num_speakers={speakers}", *overrides)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.load()
    (fold,) = instantiate(cfg.split).folds(dm.corpus.utterances)
    dm.use_fold(fold)
    return dm, fold


def _spectrum_db(wave: torch.Tensor, sr: int, low: float, high: float) -> float:
    power = torch.fft.rfft(wave.double()).abs().pow(2)
    freqs = torch.fft.rfftfreq(len(wave), 1 / sr)
    band = (freqs >= low) & (freqs < high)
    return float(10 * torch.log10(power[band].sum() / power.sum()))


def test_label_noise_replaces_training_and_validation_labels_only(make_cfg):
    dm, fold = _fold(make_cfg, "inject.label_noise=0.4")
    seen = fold.train + fold.val
    truth = [dm.corpus.class_names.index(dm.corpus.utterances[i].label) for i in range(len(dm.corpus.utterances))]
    changed = [i for i in seen if dm.targets[i] != truth[i]]
    assert 0.25 < len(changed) / len(seen) < 0.55  # one draw over the corpus: about 40 % of any part
    assert all(dm.targets[i] == truth[i] for i in fold.test)  # the test labels are never touched
    assert {r["path"] for r in dm.changed_labels} == {dm.corpus.utterances[i].path for i in changed}
    assert all(r["given"] != r["label"] for r in dm.changed_labels)
    clean, _ = _fold(make_cfg)
    assert all(clean.targets[i] == truth[i] for i in range(len(truth))) and not clean.changed_labels
    # training counts follow the labels as given
    assert sum(dm.train_class_counts()) == len(fold.train)
    counts = [sum(dm.targets[i] == c for i in fold.train) for c in range(len(dm.corpus.class_names))]
    assert dm.train_class_counts() == counts


def test_confusable_label_noise_picks_a_neighbour(make_cfg):
    dm, fold = _fold(make_cfg, "inject.label_noise=0.5", "inject.label_noise_kind=confusable")
    assert dm.changed_labels
    for row in dm.changed_labels:
        near = [c for c in CONFUSABLE[row["label"]] if c in dm.corpus.class_names]
        assert row["given"] in near


def test_test_noise_changes_only_test_audio_at_the_asked_snr(make_cfg):
    dm, fold = _fold(make_cfg, "inject.test_snr_db=5", "inject.test_noise=white")
    for i in fold.train + fold.val:
        assert torch.equal(dm.wave(i), dm.corpus.audio(i))
    for i in fold.test:
        clean, noisy = dm.corpus.audio(i).double(), dm.wave(i).double()
        snr = 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean())
        assert float(snr) == pytest.approx(5.0, abs=0.3)
    batch = next(iter(dm.test_dataloader()))  # what the model is given
    i = fold.test[int(batch["index"][0])]
    n = dm.wave(i).numel()
    assert torch.equal(batch["waves"][0, :n], dm.wave(i))


def test_babble_is_mixed_from_training_speakers_only():
    sr, n = 16000, 16000
    t = torch.arange(n) / sr
    trainers = [torch.sin(2 * np.pi * 1234 * t) * 0.3]  # every training utterance a 1234 Hz tone
    test = torch.sin(2 * np.pi * 200 * t) * 0.3
    noisy = degrade(test, Injection(test_snr_db=0, test_noise="babble"), sr, np.random.default_rng(0), trainers)
    noise = (noisy - test).double()
    peak = float(torch.fft.rfftfreq(n, 1 / sr)[torch.fft.rfft(noise).abs().argmax()])
    assert peak == pytest.approx(1234, abs=2)
    with pytest.raises(ValueError, match="babble needs utterances of other training speakers"):
        degrade(test, Injection(test_snr_db=0, test_noise="babble"), sr, np.random.default_rng(0), [])


def test_channels_band_limit_or_quieten_the_test_audio(make_cfg):
    tel, fold = _fold(make_cfg, "inject.test_channel=telephone")
    i = fold.test[0]
    assert _spectrum_db(tel.wave(i), 16000, 4500, 8000) < _spectrum_db(tel.corpus.audio(i), 16000, 4500, 8000) - 10
    assert _spectrum_db(tel.wave(i), 16000, 0, 150) < _spectrum_db(tel.corpus.audio(i), 16000, 0, 150) - 10
    assert all(torch.equal(tel.wave(j), tel.corpus.audio(j)) and j not in tel.test_waves for j in fold.train)
    quiet, fold = _fold(make_cfg, "inject.test_channel=quiet")
    clean, low = quiet.corpus.audio(i).double(), quiet.wave(i).double()
    assert float(10 * torch.log10(clean.pow(2).mean() / low.pow(2).mean())) == pytest.approx(20, abs=1.5)
    assert len(torch.unique(low)) <= 255  # 8 bits


def test_train_share_keeps_that_share_of_every_class(make_cfg):
    dm, fold = _fold(make_cfg, "inject.train_share=0.5")
    before = Counter(dm.corpus.utterances[i].label for i in fold.train)
    after = Counter(dm.corpus.utterances[i].label for i in dm.fold.train)
    assert all(after[c] == max(1, round(0.5 * before[c])) for c in before)
    assert dm.fold.val == fold.val and dm.fold.test == fold.test


def test_bad_inject_values_name_the_key():
    with pytest.raises(ValueError, match="inject.test_noise=purple"):
        Injection(test_noise="purple")
    with pytest.raises(ValueError, match="inject.label_noise"):
        Injection(label_noise=1.5)
    with pytest.raises(ValueError, match="inject.test_channel=radio"):
        Injection(test_channel="radio")


def test_a_run_records_what_it_injected(make_cfg):
    from ser.train import train

    cfg = make_cfg("debug=smoke", "inject.label_noise=0.3", "inject.test_channel=lowpass4k")
    train(cfg)
    from pathlib import Path

    run = Path(cfg.paths.output_dir)
    rows = list(csv.DictReader(open(run / "injected_labels.csv")))
    assert rows and all(r["label"] != r["given"] for r in rows)
    stored = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]["config"]
    assert stored["inject"]["label_noise"] == 0.3 and stored["inject"]["test_channel"] == "lowpass4k"


def test_the_learning_curve_subset_keeps_every_class_training_sees_under_label_noise(make_cfg):
    """A class made rare by its given labels, then noisy labels: a quarter of the training data drawn by the true
    labels could leave no utterance given that class (the class-weighted loss refuses such a fold); drawn by the
    labels training sees, each keeps at least one."""
    dm, fold = _fold(make_cfg, "inject.label_noise=0.4", "fold.train_fraction={anger:0.1}")
    names = dm.corpus.class_names
    full = {names[dm.targets[i]] for i in dm.fold.train}
    for subset in (0.1, 0.25):
        dm.use_fold(fold, subset)
        assert {names[dm.targets[i]] for i in dm.fold.train} == full
        assert 0 not in dm.train_class_counts()
