"""How the diagnosis ranks what it finds: measured causes before unmeasured ones, a consequence after the cause
that explains it only when that cause is large enough to, and label noise ranked on strong label evidence
when retraining cannot say. Each rule has a case on both sides, so removing it fails a test."""

import pytest

from ser.diagnose.check import EXPLAINS
from ser.diagnose.checks.fitting import Fitting
from ser.diagnose.checks.label_noise import CAUSE_SHARE, MIN_SHARE, STRONG_SHARE, LabelNoise
from ser.diagnose.evidence import Finding, RunSettings
from ser.diagnose.report import explains, rank


def _cause(id, score, interval=None, explained_by=()):
    return Finding(id, id.replace("_", " "), score, "evidence", interval=interval, explained_by=explained_by)


def _ids(findings):
    return [f.id for f in findings]


def test_a_cause_without_an_interval_never_outranks_one_whose_interval_stays_above_zero():
    confusable = _cause("confusable_classes", 0.062)  # no interval: sure by its size only
    underfit = _cause("underfitting", 0.049, interval=(0.01, 0.09))
    weak = _cause("weak_features", 0.2, interval=(-0.01, 0.4))
    assert _ids(rank([confusable, underfit, weak])[0]) == ["underfitting", "confusable_classes", "weak_features"]
    # the other side: among causes with intervals above zero, the UA at stake decides
    assert _ids(rank([_cause("imbalance", 0.04, (0.01, 0.07)), underfit])[0]) == ["underfitting", "imbalance"]


def test_a_consequence_follows_its_cause_only_when_the_cause_accounts_for_it():
    weak = _cause("weak_features", 0.052, interval=(0.02, 0.08))
    underfit = _cause("underfitting", 0.349, interval=(0.31, 0.39), explained_by=("weak_features",))
    assert not explains(weak, underfit)
    assert _ids(rank([weak, underfit])[0]) == ["underfitting", "weak_features"]  # a probe 0.35 ahead: training
    weak_enough = _cause("weak_features", EXPLAINS * 0.349 + 0.01, interval=(0.1, 0.3))
    assert explains(weak_enough, underfit)
    assert _ids(rank([weak_enough, underfit])[0]) == ["weak_features", "underfitting"]
    # a weak (unsure) cause explains nothing
    unsure = _cause("weak_features", 0.4, interval=(-0.1, 0.8))
    assert not explains(unsure, underfit)


def test_overfitting_of_too_little_data_goes_after_it():
    data = _cause("too_little_data", 0.044, interval=(0.01, 0.08))
    overfit = _cause("overfitting", 0.065, interval=(0.03, 0.1), explained_by=("too_little_data", "label_noise"))
    weak = _cause("weak_features", 0.03, interval=(0.005, 0.06))
    assert _ids(rank([overfit, weak, data])[0]) == ["too_little_data", "overfitting", "weak_features"]
    # overfitting far larger than the learning curve's gain is its own cause
    big = _cause("overfitting", 0.3, interval=(0.2, 0.4), explained_by=("too_little_data",))
    assert _ids(rank([big, data])[0]) == ["overfitting", "too_little_data"]


def test_chains_of_consequences_are_placed_after_their_causes():
    labels = _cause("label_noise", 0.12, interval=(0.08, 0.16))
    data = _cause("too_little_data", 0.2, interval=(0.1, 0.3), explained_by=("label_noise",))
    overfit = _cause("overfitting", 0.3, interval=(0.2, 0.4), explained_by=("too_little_data",))
    assert _ids(rank([overfit, data, labels])[0]) == ["label_noise", "too_little_data", "overfitting"]


class _Ev:
    """What ``judge`` reads of the evidence."""

    settings = RunSettings(label_smoothing=False)
    measured = {}


def _labels(share, gain=0.1, interval=(0.05, 0.15), **more):
    return {"features": "own", "n": 400, "flagged": int(400 * share), "share": share, "per_class": {"a": 3, "b": 1},
            "file": "suspect_labels.csv", "probe_ua": 0.5, "probe_ua_without": 0.5 + gain, "gain": gain,
            "interval": interval} | more


def test_a_large_flagged_share_with_a_probe_gain_is_label_noise_without_retraining():
    judged = LabelNoise().judge(_labels(0.4, retrain_skipped="it would take about 9 min"), _Ev())
    assert [(f.id, f.kind) for f in judged] == [("label_noise", "cause")] and judged[0].interval == (0.05, 0.15)
    assert "not retrained (it would take about 9 min)" in judged[0].evidence
    # a share a clean corpus could show stays a risk to check
    small = LabelNoise().judge(_labels(MIN_SHARE + 0.01, retrain_skipped="retrain=false"), _Ev())
    assert [(f.id, f.kind) for f in small] == [("label_noise", "risk")]
    assert STRONG_SHARE > MIN_SHARE + 0.01


def test_retraining_against_as_many_random_drops_decides_and_inconclusive_retraining_defers_to_the_share():
    retrained = {"retrained_ua": 0.6, "random_ua": 0.5, "run_ua": 0.55, "retrained_gain": 0.1,
                 "retrained_interval": (0.04, 0.16)}
    found = LabelNoise().judge(_labels(0.12, **retrained), _Ev())
    assert [(f.id, f.kind, f.score) for f in found] == [("label_noise", "cause", 0.1)]
    # as few suspects as a clean acted corpus flags (SAVEE 7.5 %): dropping hard takes helps too, so a risk
    few = LabelNoise().judge(_labels(0.08, **retrained), _Ev())
    assert [(f.id, f.kind, f.cause) for f in few] == [("label_noise", "risk", "suspect labels")]
    assert MIN_SHARE < 0.08 < CAUSE_SHARE < 0.12
    inconclusive = retrained | {"retrained_gain": 0.016, "retrained_interval": (-0.03, 0.06)}
    assert LabelNoise().judge(_labels(0.08, **inconclusive), _Ev()) == []  # few suspects, nothing retrained shows
    strong = LabelNoise().judge(_labels(0.58, gain=0.135, interval=(0.1, 0.17), **inconclusive), _Ev())
    assert [(f.id, f.kind, f.score) for f in strong] == [("label_noise", "cause", 0.135)]
    assert "inconclusive" in strong[0].evidence


def test_across_corpora_only_a_flagged_share_far_above_a_clean_corpus_makes_label_noise_a_cause():
    # every fold tested on another corpus: a probe's gain there mixes labels with transfer
    strong = LabelNoise().judge(_labels(0.44, across_corpora=True), _Ev())
    assert [(f.id, f.kind) for f in strong] == [("label_noise", "cause")] and "training corpus" in strong[0].evidence
    assert LabelNoise().judge(_labels(STRONG_SHARE - 0.01, across_corpora=True), _Ev()) == []  # no risk either
    assert LabelNoise().judge(_labels(0.44, gain=0.01, across_corpora=True), _Ev()) == []


@pytest.mark.parametrize("weak,interval,converged,explained", [
    (0.06, (0.02, 0.1), True, True),  # converged short of its training data, on features a reference beats: input
    (0.06, (0.02, 0.1), False, False),  # still improving: underfit (ranked by report.explains against the probe's lead)
    (0.06, (-0.01, 0.13), True, False),  # weak features not beyond doubt
    (0.01, (0.005, 0.02), True, False),  # too small to report
])
def test_weak_features_explain_underfitting_of_a_converged_model_only(weak, interval, converged, explained):
    ev = type("Ev", (), {"of": lambda self, check: {"weak": weak, "weak_interval": interval}})()
    m = {"capacity": 0.35, "still_improving": not converged}
    assert Fitting._features_explain(m, ev) is explained


def test_consequences_of_one_cause_keep_their_own_order_after_it():
    labels = _cause("label_noise", 0.125, interval=(0.08, 0.16))
    data = _cause("too_little_data", 0.105, interval=(0.05, 0.15), explained_by=("label_noise",))
    weak = _cause("weak_features", 0.042, interval=(0.01, 0.09), explained_by=("label_noise",))
    other = _cause("speaker_variability", 0.037, interval=(0.01, 0.06))
    assert _ids(rank([weak, other, data, labels])[0]) == ["label_noise", "too_little_data", "weak_features",
                                                          "speaker_variability"]


def test_an_explanation_moves_a_consequence_down_never_up():
    """SAVEE pretrained, label noise + imbalance: too little data (weak: its interval reaches zero) follows label
    noise, but does not pass speaker variability and imbalance, whose intervals stay above zero."""
    labels = _cause("label_noise", 0.088, interval=(0.05, 0.12))
    data = _cause("too_little_data", 0.029, interval=(-0.01, 0.06), explained_by=("label_noise",))
    speakers = _cause("speaker_variability", 0.062, interval=(0.02, 0.1))
    imbalance = _cause("imbalance", 0.048, interval=(0.01, 0.08))
    assert _ids(rank([data, speakers, imbalance, labels])[0]) == ["label_noise", "speaker_variability", "imbalance",
                                                                  "too_little_data"]
    # the other side: sure of itself, the consequence goes right after its cause, above smaller causes
    data = _cause("too_little_data", 0.055, interval=(0.02, 0.09), explained_by=("label_noise",))
    assert _ids(rank([data, speakers, imbalance, labels])[0]) == ["label_noise", "speaker_variability", "too_little_data",
                                                                  "imbalance"]


def test_threshold_settings_reach_every_module_that_reads_them_and_are_restored():
    from ser.diagnose import check, report
    from ser.diagnose.checks import fitting, label_noise
    from ser.diagnose.thresholds import GRID, patched

    with patched({"report_above": 0.03, "explains": 1.0, "strong_share": 0.25}):
        assert check.REPORT_ABOVE == fitting.REPORT_ABOVE == report.REPORT_ABOVE == 0.03
        assert report.EXPLAINS == check.EXPLAINS == 1.0 and label_noise.STRONG_SHARE == 0.25
        weak = _cause("weak_features", 0.3, interval=(0.1, 0.5))
        assert not explains(weak, _cause("underfitting", 0.35, (0.2, 0.5), explained_by=("weak_features",)))
    assert (report.REPORT_ABOVE, report.EXPLAINS, label_noise.STRONG_SHARE) == (0.02, 0.25, 0.15)
    assert all(values[0] == {"report_above": 0.02, "explains": 0.25, "fitting_gap": 0.2, "loss_rise": 1.0,
                             "strong_share": 0.15, "cause_share": 0.1, "dominant": 0.2,
                             "few_steps": 60}[name]
               for name, (_, _, values) in GRID.items())  # shipped first
    with patched({"loss_rise": 1.5}):
        assert fitting.LOSS_RISE == 1.5
    assert fitting.LOSS_RISE == 1.0


def test_across_corpora_the_probe_gain_is_measured_on_held_out_speakers_of_the_training_corpus(monkeypatch):
    from types import SimpleNamespace as NS

    import numpy as np

    from ser.diagnose.checks import label_noise

    speakers = [f"s{i % 5}" for i in range(100)]
    X = np.arange(100, dtype=float)[:, None]  # a row's feature is its index: what each probe saw is readable
    fitted = []

    class Recording:
        def __init__(self, X, y, n_classes):
            fitted.append({speakers[int(i)] for i in X[:, 0]})

        def predict_proba(self, X):
            held = {speakers[int(i)] for i in X[:, 0]}
            assert not held & fitted[-1]  # never tested on a speaker it trained on
            return np.eye(2)[(X[:, 0] % 2 == 0).astype(int)]

    monkeypatch.setattr(label_noise, "Probe", Recording)
    run = NS(matrix=lambda name: (X, None), dm=NS(corpus=NS(utterances=[NS(speaker=s) for s in speakers])),
             options=NS(bootstrap=50, seed=0))
    given = (np.arange(100) % 2 == 0).astype(int)
    m = label_noise._gain_within(run, "own", {1, 3}, list(range(100)), given, 2)
    assert m["across_corpora"] and m["probe_ua"] == m["probe_ua_without"] == 1.0 and m["gain"] == 0.0
    assert len(fitted) == 8 and all(len(s) in (3, 4) for s in fitted)  # 4 speaker groups, with and without the drop


def test_on_degraded_test_audio_the_learning_curve_of_the_validation_speakers_is_judged():
    """Noisy test audio flattens the test curve (every share meets the same noise); the validation speakers, held
    out of the training speakers and recorded as they were, still show what more data would win."""
    from ser.diagnose.checks.data_size import DataSize
    from ser.diagnose.checks.mismatch import Mismatch

    class Ev(_Ev):
        def __init__(self, mismatch):
            self.mismatch = mismatch

        def of(self, check):
            return self.mismatch if check is Mismatch else {}  # the fitting check: nothing measured

    flat = {"ua": {"0.25": 0.27, "0.5": 0.35, "1.0": 0.36}, "gain": 0.01, "rising": True, "interval": (-0.02, 0.05)}
    rising = {"ua": {"0.25": 0.45, "0.5": 0.57, "1.0": 0.67}, "gain": 0.10, "rising": True, "interval": (0.07, 0.14)}
    m = flat | {"n_train": 84.0, "validation": rising}
    noisy = {"differs": ["snr_db"], "gap": 0.37}
    (found,) = DataSize().judge(m, Ev(noisy))
    assert found.id == "too_little_data" and found.score == 0.10 and found.interval == (0.07, 0.14)
    assert "validation speakers" in found.evidence
    # the other side: test audio recorded as the training audio was; the test curve decides
    assert DataSize().judge(m, Ev({"differs": [], "gap": 0.0})) == []
    assert DataSize().judge(m, Ev({"differs": ["snr_db"], "gap": 0.01})) == []  # a mismatch too small to list
    # a run diagnosed before the validation curve existed is judged on its test curve
    assert DataSize().judge(flat | {"n_train": 84.0}, Ev(noisy)) == []


def _fit(gap, rise, rose_folds=3, late=0.27, capacity=0.29):
    return {"train_ua_eval": 0.45, "test_ua_folds": 0.45 - gap, "gap": gap, "epochs": 20, "val_loss_rise": rise,
            "val_loss_rose": rose_folds > 1, "val_loss_min_epoch": 5, "val_loss_rose_folds": rose_folds,
            "curve_folds": 3, "train_loss_late_drop": late, "still_improving": True, "capacity": capacity,
            "capacity_interval": (capacity - 0.05, capacity + 0.05)}


class _FitEv(_Ev):
    settings = RunSettings(model_options={"hidden": 256, "dropout": 0.0}, lr=3e-3, max_epochs=20, batch_size=32)

    def of(self, check):
        return {"weak": 0.063, "weak_interval": (0.03, 0.09)}  # 4 MFCCs: a reference beats them beyond doubt


def test_validation_loss_climbing_in_every_fold_while_training_loss_falls_is_overfitting_whatever_the_gap():
    """A wide LSTM over 4 MFCCs memorises (validation loss up 1.8 nats in every fold) though the weak features keep
    its training UA, and so its gap, low: overfitting, not underfitting."""
    (found,) = Fitting().judge(_fit(gap=0.12, rise=1.8), _FitEv())
    assert found.id == "overfitting" and found.score == 0.29 and "memorising" in found.evidence
    # the other sides: a rise in only some folds, training loss no longer falling, a rise a clean run shows
    for m in (_fit(0.12, 1.8, rose_folds=2), _fit(0.12, 1.8, late=0.03), _fit(0.12, 0.97)):
        assert [f.id for f in Fitting().judge(m, _FitEv())] == ["underfitting"]


def test_underfitting_advice_returns_a_slow_learning_rate_to_the_optimizers_default():
    """2 epochs at lr 1e-5 under AdamW (default 1e-3): tripling gave 3e-5 and helped EmoDB's LSTM +0.10 UA; back at
    the optimizer's own rate it helped +0.20. A rate at or above the default is still raised threefold."""
    from omegaconf import OmegaConf

    from ser.diagnose.checks.fitting import _underfit_advice

    def settings(lr):
        cfg = OmegaConf.create({"loss": {}, "features": {"_target_": "ser.features.frontend.Frontend"}, "model": {},
                                "optimizer": {"_target_": "torch.optim.AdamW", "lr": lr},
                                "trainer": {"max_epochs": 2}})
        return type("Ev", (), {"settings": RunSettings.of(cfg)})()

    assert settings(1e-5).settings.default_lr == 1e-3
    assert _underfit_advice(settings(1e-5), {}) == ["trainer.max_epochs=4", "optimizer.lr=1e-03"]
    assert _underfit_advice(settings(1e-3), {}) == ["trainer.max_epochs=4", "optimizer.lr=3e-03"]
    assert RunSettings.of(OmegaConf.create({"loss": {}, "features": {}, "model": {},
                                            "optimizer": {"_target_": "no.such.Optimizer"}})).default_lr is None


def _underfit(train_ua=0.36, capacity=0.37, epochs=10):
    return {"train_ua_eval": train_ua, "test_ua_folds": train_ua - 0.04, "gap": 0.04, "epochs": epochs,
            "still_improving": True, "capacity": capacity, "capacity_interval": (capacity - 0.04, capacity + 0.04)}


class _StepsEv(_Ev):
    """A from-scratch recipe (batches of 32) whose model does not fit its own training utterances."""

    def __init__(self, fitting, epochs=10, pretrained=False):
        self.fitting = fitting
        self.settings = RunSettings(batch_size=32, max_epochs=epochs, lr=1e-3, pretrained=pretrained)

    def of(self, check):
        from ser.diagnose.checks.mismatch import Mismatch

        return {"differs": [], "gap": 0.0} if check is Mismatch else self.fitting if check is Fitting else {}


_FLAT = {"ua": {"0.25": 0.24, "0.5": 0.30, "1.0": 0.30}, "gain": 0.004, "rising": True, "interval": (-0.02, 0.02)}


def test_underfitting_over_a_few_batches_an_epoch_is_too_little_data():
    """EmoDB's LSTM on a quarter of its training data: 71 utterances are 3 batches, 10 epochs 30 optimizer steps; the
    model fits UA 0.36 of its own training speakers and the learning curve (every share as short of steps) is flat.
    The data is what is short: too little data, with underfitting's UA at stake, ranked before underfitting."""
    from ser.diagnose.checks.data_size import DataSize

    (found,) = DataSize().judge(_FLAT | {"n_train": 71.0}, _StepsEv(_underfit()))
    assert found.id == "too_little_data" and found.score == 0.37 and found.interval == (0.33, 0.41)
    assert "3 batches of 32: 10 epochs made 30 optimizer steps" in found.evidence
    assert found.advice == ["trainer.max_epochs=40"] and "about 120 optimizer steps" in found.note
    (underfit,) = Fitting().judge(_underfit(), _StepsEv(_underfit()))
    assert _ids(rank([underfit, found])[0]) == ["too_little_data", "underfitting"]
    # the other sides: too few epochs over many batches is the epoch budget (underfitting, the curve decides data);
    # a model that fits; many steps; a pretrained upstream's head (its steps are advised by the curve's finding)
    assert DataSize().judge(_FLAT | {"n_train": 286.0}, _StepsEv(_underfit(epochs=3), epochs=3)) == []
    assert DataSize().judge(_FLAT | {"n_train": 71.0}, _StepsEv(_underfit(train_ua=0.9))) == []
    assert DataSize().judge(_FLAT | {"n_train": 71.0}, _StepsEv(_underfit(epochs=40), epochs=40)) == []
    assert DataSize().judge(_FLAT | {"n_train": 71.0}, _StepsEv(_underfit(), pretrained=True)) == []


def test_on_degraded_test_audio_the_steps_rule_reads_the_validation_speakers():
    """Noisy test audio over a quarter of the data: on the noisy test audio a probe beats nothing (-0.04); on the
    validation speakers, recorded as training was, the probe leads the under-trained model by 0.12."""
    from ser.diagnose.checks.data_size import DataSize
    from ser.diagnose.checks.mismatch import Mismatch

    class Noisy(_StepsEv):
        def of(self, check):
            return {"differs": ["snr_db"], "gap": 0.06} if check is Mismatch else super().of(check)

    fit = _underfit(train_ua=0.25, capacity=-0.04)
    val = _FLAT | {"capacity": 0.12, "capacity_interval": (0.06, 0.18)}
    (found,) = DataSize().judge(_FLAT | {"n_train": 53.0, "validation": val}, Noisy(fit))
    assert found.id == "too_little_data" and found.score == 0.12 and found.interval == (0.06, 0.18)
    assert "validation speakers" in found.evidence
    # the other sides: nothing measured on the validation speakers; the same audio at test (the test probe decides)
    no_probe = {k: v for k, v in val.items() if not k.startswith("capacity")}
    assert DataSize().judge(_FLAT | {"n_train": 53.0, "validation": no_probe}, Noisy(fit)) == []
    assert DataSize().judge(_FLAT | {"n_train": 53.0, "validation": val}, _StepsEv(fit)) == []


def test_class_imbalance_explains_too_little_data():
    """Rare classes are the data a recipe lacks: a strong imbalance ranks before the shortage it makes."""
    from ser.diagnose.checks.data_size import DataSize

    (data,) = DataSize().judge(_FLAT | {"n_train": 40.0}, _StepsEv(_underfit(capacity=0.34)))
    imbalance = _cause("imbalance", 0.14, interval=(0.08, 0.2))
    assert _ids(rank([data, imbalance])[0]) == ["imbalance", "too_little_data"]
    small = _cause("imbalance", EXPLAINS * 0.34 - 0.01, interval=(0.02, 0.1))
    assert _ids(rank([data, small])[0]) == ["too_little_data", "imbalance"]


def test_the_validation_probe_is_paired_with_the_models_predictions_in_their_order():
    from types import SimpleNamespace as NS

    import numpy as np

    from ser.diagnose.checks.data_size import _capacity_on_validation

    y = np.array([0, 1] * 20)
    X = np.where(y[:, None] == 1, 1.0, -1.0) + 0.01 * np.arange(40)[:, None]  # separable: a probe gets every one
    val = [39, 2, 17, 30, 5, 8]  # the model's order, not the fold's
    run = NS(matrix=lambda name: (X, None), fold_matrix=lambda name: X, use=lambda name: NS(train=list(range(10, 30))),
             dm=NS(targets=y), options=NS(bootstrap=50, seed=0))
    own = [{"index": val, "preds": np.zeros(6, int), "labels": y[val]}]  # a model that calls everything class 0
    m = _capacity_on_validation(run, NS(folds=[NS(fold="k0")], C=2), own, y[val])
    assert m["probe_ua"] == 1.0 and m["capacity"] == 0.5 and m["capacity_interval"][0] > 0


def test_features_compared_on_mismatched_test_audio_follow_the_mismatch_whatever_it_costs():
    """Quiet test audio (-20 dB) under a CNN near chance: the model loses 0.034 UA to it, a probe on its log-mel
    0.15 more than one on eGeMAPS (level-normalised). Compared on that audio the features are judged for robustness,
    so the mismatch, however small, goes first; with other causes the size rule (``EXPLAINS``) still holds."""
    from ser.diagnose.checks.features import Features

    class Ev(_Ev):
        ua = 0.29
        settings = RunSettings(spectral_frontend=True)

    m = {"weak": 0.153, "weak_interval": (0.116, 0.191), "reference": "egemaps", "occlusion": {},
         "probe_ua": {"own": 0.20, "egemaps": 0.353}, "described": {"own": "own", "egemaps": "eGeMAPS"}}
    (weak,) = Features().judge(m, Ev())
    mismatch = _cause("mismatch", 0.034, interval=(0.011, 0.056))
    assert 0.034 < EXPLAINS * 0.153 and explains(mismatch, weak)
    assert _ids(rank([weak, mismatch])[0]) == ["mismatch", "weak_features"]
    # the other side: label noise as small is no explanation (the probes compared content on the test audio)
    labels = _cause("label_noise", 0.034, interval=(0.011, 0.056))
    assert not explains(labels, weak) and _ids(rank([weak, labels])[0]) == ["weak_features", "label_noise"]
    # and a mismatch the evidence is unsure of explains nothing
    assert not explains(_cause("mismatch", 0.034, interval=(-0.01, 0.07)), weak)


def test_over_short_epochs_a_rising_learning_curve_does_not_explain_underfitting():
    """The synthetic LSTM trained 3 epochs: 397 utterances a fold are 13 batches, 39 optimizer steps. Its learning curve,
    retrained with the same 3 epochs on 25 and 50 % of the data, makes fewer steps at every share, so its rise
    (0.111) measures steps as much as data and must not push the underfitting (a probe 0.383 ahead) after it."""

    class Ev(_StepsEv):
        def __init__(self, n_train, epochs):
            super().__init__(_underfit(capacity=0.383, epochs=epochs), epochs=epochs)
            self.measured = {"data_size": {"n_train": n_train}}

    data = _cause("too_little_data", 0.111, interval=(0.06, 0.16))
    (short,) = Fitting().judge(_underfit(capacity=0.383, epochs=3), Ev(397.0, 3))
    assert "too_little_data" not in short.explained_by
    assert _ids(rank([data, short])[0]) == ["underfitting", "too_little_data"]
    # the other sides: the same rise explains underfitting over enough steps (13 batches over 10 epochs), and over a
    # few batches an epoch (3 batches over 10 epochs: the data is what is short, the steps rule's case)
    for n_train, epochs in ((397.0, 10), (71.0, 10)):
        (f,) = Fitting().judge(_underfit(capacity=0.383, epochs=epochs), Ev(n_train, epochs))
        assert "too_little_data" in f.explained_by and _ids(rank([data, f])[0]) == ["too_little_data", "underfitting"]
