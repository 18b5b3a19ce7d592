"""python -m ser.diagnose.bench: every scenario of conf/bench.yaml composes into a valid training config, and
the scores (top-1, MRR, false alarms on the controls) count what they say."""

import pytest

from ser.cli import compose_config
from ser.diagnose.bench import (
    Corpus,
    Recipe,
    chosen_scenarios,
    diagnose_options,
    expand,
    expected_cost,
    markdown,
    quote_recipe,
    retrain_budget,
    score,
)
from ser.diagnose.checks.label_noise import DETECTION
from ser.diagnose.context import RunContext

CORPUS = Corpus("synthetic", "/data/synthetic", ["anger", "happiness", "neutral", "sadness"], [40, 40, 40, 40], 6)


@pytest.fixture(scope="module")
def bench_cfg():
    return compose_config("bench", ["data=synthetic"])


def test_every_scenario_composes_into_a_valid_training_config(bench_cfg):
    scenarios = chosen_scenarios(bench_cfg, "pretrained")
    assert {c for s in scenarios for c in s.injected} >= {"imbalance", "label_noise", "mismatch", "too_little_data",
                                                          "underfitting", "overfitting", "weak_features", "corpus_shift"}
    assert any(s.cause is None for s in scenarios)
    for sc in scenarios:
        overrides = expand(sc, CORPUS, bench_cfg, ["data=synthetic"])
        cfg = compose_config("train", overrides)  # an unknown key or a wrong value fails here, naming the key
        if sc.shift:
            assert cfg.split._target_.endswith("CorpusSplit") and len(cfg.data.corpora) == 2
            test = cfg.split.test
            assert (test == "synthetic") == (sc.shift == "in"), sc.name
        else:
            assert cfg.split._target_.endswith("KFoldSplit") and cfg.split.k == 4
        if sc.rare_share is not None:  # every other class cut to that share, the rest whole
            assert dict(cfg.fold.train_fraction) == {"happiness": sc.rare_share, "sadness": sc.rare_share}
        if sc.cause is None:
            assert cfg.inject.label_noise == 0 and cfg.inject.test_snr_db is None and cfg.inject.train_share == 1


@pytest.mark.parametrize("recipe,target", [("lstm", "LSTMEncoder"), ("cnn", "CNNEncoder"),
                                           ("cnn_lstm", "CNNLSTMEncoder"), ("[model=cnn,features=mfcc]", "CNNEncoder")])
def test_every_recipe_runs_the_faults_in_its_own_models_keys(recipe, target):
    cfg = compose_config("bench", quote_recipe(["data=synthetic", f"recipe={recipe}"]))
    scenarios = {s.name: s for s in chosen_scenarios(cfg, Recipe.of(cfg).name)}
    assert "control_scratch" not in scenarios and "overfit_pretrained_60ep" not in scenarios  # would repeat a scenario
    for name in ("control", "overfit_wide", "double_weak_overfit", "weak_features_mfcc4"):
        train = compose_config("train", expand(scenarios[name], CORPUS, cfg, ["data=synthetic"]))
        assert train.model._target_.endswith(target) and train.split.k == 3, (recipe, name)
        if "overfit" in name:
            assert train.model.dropout == 0 and train.optimizer.weight_decay == 0
        if "weak" in name:
            assert train.features.n_mfcc == 4
    assert [s.injected for s in scenarios.values() if len(s.injected) > 1] == [
        ["label_noise", "imbalance"], ["mismatch", "too_little_data"], ["weak_features", "overfitting"],
        ["corpus_shift", "label_noise"]]


def test_the_longest_scenarios_are_started_first():
    """Two at once, the LSTM bench ended on one 816 s scenario with a core idle: the 20-epoch overfitting runs come
    first, the 2-epoch and quarter-data ones last."""
    cfg = compose_config("bench", ["data=synthetic", "recipe=lstm"])
    scenarios = chosen_scenarios(cfg, Recipe.of(cfg).name)
    cost = {sc.name: expected_cost(expand(sc, CORPUS, cfg, ["data=synthetic"])) for sc in scenarios}
    longest = sorted(cost, key=lambda name: -cost[name])
    assert set(longest[:2]) == {"overfit_wide", "double_weak_overfit"} and cost["control"] == 10
    assert cost["little_data_25"] == 2.5 and cost["underfit_2ep_1e-5"] == 2
    assert expected_cost(["trainer.max_epochs=${oops}"]) == 10  # what it cannot read counts as the default


@pytest.mark.parametrize("wall_s", [1.0, 1e6])  # a quiet machine, or one where the job beside it slowed training
def test_the_bench_budgets_retraining_by_work_not_by_the_clock(wall_s):
    """retrain=auto with seconds let a loaded machine skip the learning curves an idle one drew (EmoDB LSTM: five
    scenarios apart, the same UAs): the bench's budget is the recipe's runs of training, whatever the clock says."""
    curve, without_suspects = 0.75, 1.2  # runs of retraining: the learning curve; without 40 % flagged, twice 60 %
    for recipe, runs, long in (("lstm", 0.5, "overfit_wide"), ("pretrained", 3.0, "overfit_pretrained_60ep")):
        cfg = compose_config("bench", ["data=synthetic", f"recipe={recipe}"])
        chosen = Recipe.of(cfg)
        scenarios = {sc.name: sc for sc in chosen_scenarios(cfg, chosen.name)}
        budget = {name: retrain_budget(diagnose_options(cfg), chosen, sc, expand(sc, CORPUS, cfg, ["data=synthetic"]))
                  for name, sc in scenarios.items()}
        assert budget["control"].budget_runs == runs and budget["label_noise_30"].budget_runs == runs
        assert budget[long].budget_runs < runs  # trained longer than its base: a smaller share of it
        assert budget["little_data_25"].budget_runs == 4 * runs  # a quarter of the data: its retraining is cheap
        runs_at = {name: RunContext(cfg, None, {"k0": None}, "/tmp", o, {"k0": wall_s}) for name, o in budget.items()}
        # a from-scratch recipe draws the learning curve where the data or the epochs are fewer, the pretrained
        # one everywhere; neither depends on wall_s
        assert bool(runs_at["control"].refuse_retraining(curve)) == (recipe == "lstm")
        assert not runs_at["little_data_25"].refuse_retraining(curve)
        assert not runs_at["underfit_2ep_1e-5"].refuse_retraining(curve)
        assert bool(runs_at["control"].refuse_retraining(without_suspects)) == (recipe == "lstm")
        assert bool(runs_at[long].refuse_retraining(curve)) == (recipe == "lstm")
    cfg = compose_config("bench", ["data=synthetic", "diagnose.retrain=false"])
    assert retrain_budget(diagnose_options(cfg), Recipe.of(cfg), scenarios["control"], []).budget_runs is None


def test_an_unknown_recipe_names_the_known_ones():
    cfg = compose_config("bench", ["data=synthetic", "recipe=transformer"])
    with pytest.raises(ValueError, match="recipe=transformer: no such recipe; recipes: .*lstm"):
        Recipe.of(cfg)


def _row(name, cause, ranked, **extra):
    return {"name": name, "cause": cause, "ua": 0.5, "wall_s": 1.0,
            "causes": [{"id": c, "score": s, "sure": "strong"} for c, s in ranked],
            "rank": [c for c, _ in ranked].index(cause) + 1 if cause in [c for c, _ in ranked] else None} | extra


def test_scores_count_top1_reciprocal_rank_and_false_alarms():
    rows = [_row("control", None, [("too_little_data", 0.04), ("mismatch", 0.03)]),
            _row("control2", None, [("imbalance", 0.05)]),
            _row("noise", "mismatch", [("mismatch", 0.4)]),
            _row("noise2", "mismatch", [("overfitting", 0.1), ("mismatch", 0.05)]),
            _row("labels", "label_noise", [("speaker_variability", 0.1)], detection={DETECTION: 0.9}),
            {"name": "broken", "cause": "imbalance", "error": "RuntimeError: boom", "wall_s": 1.0}]
    s = score(rows, CORPUS)
    assert s["n_injected"] == 3 and s["failed"] == ["broken"]
    assert s["top1"] == pytest.approx(1 / 3)
    assert s["mrr"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert s["per_cause"]["mismatch"] == {"n": 2, "top1": 0.5, "mrr": 0.75}
    # too little data may be true of a clean control; test-condition mismatch, and imbalance on a balanced corpus, not
    assert [(a["scenario"], a["cause"]) for a in s["false_alarms"]] == [("control", "mismatch"), ("control2", "imbalance")]
    assert s["detection"] == {DETECTION: {"labels": 0.9}}
    assert s["separation"]["mismatch"] == {"injected_min": 0.05, "others_max": 0.03}
    # on an imbalanced corpus imbalance may be real in the control
    skewed = Corpus("x", "/x", CORPUS.class_names, [100, 40, 40, 20], 6)
    assert "imbalance" not in score(rows, skewed)["absent_in_control"]
    text = markdown(s | {"corpus": "synthetic", "command": "python -m ser.diagnose.bench", "scenarios": rows,
                         "wall_s": 60.0, "cores": 2, "jobs": 2, "kept": 0})
    assert "**Top-1 33 %**" in text and "false alarms on the clean controls: **2**" in text
    assert "| labels | label_noise | 0.500 | speaker_variability 0.100 | absent |" in text
    assert "| broken | imbalance | failed: RuntimeError: boom" in text


def test_advice_helped_counts_the_top_causes_verified_advice():
    verified = lambda change: [{"id": "mismatch", "advice": ["conditions.copies=4"], "metric": "UA",  # noqa: E731
                                "mean_before": 0.5, "mean_after": 0.5 + change, "change": change, "p": 0.03,
                                "helped": change > 0}]
    rows = [_row("noise", "mismatch", [("mismatch", 0.4)], verified=verified(0.2), advice_helped=True),
            _row("noise2", "mismatch", [("mismatch", 0.3)], verified=verified(-0.01), advice_helped=False),
            _row("labels", "label_noise", [("mismatch", 0.1)]),  # not verified: not counted
            _row("control", None, [("imbalance", 0.05)], advice_helped=True)]  # controls are not counted either
    s = score(rows, CORPUS)
    assert s["advice_helped"] == 0.5 and s["n_verified"] == 2
    text = markdown(s | {"corpus": "synthetic", "command": "python -m ser.diagnose.bench verify=true", "scenarios": rows,
                         "wall_s": 60.0, "cores": 2, "jobs": 2, "kept": 0})
    assert "**Advice helped**" in text and "50 % of 2 injected scenarios" in text
    assert "| yes (mismatch: +0.200, p 0.03) |" in text and "| no (mismatch: -0.010, p 0.03) |" in text
    assert score(rows[2:3], CORPUS)["advice_helped"] is None


def test_verify_is_a_bench_option(bench_cfg):
    assert bench_cfg.diagnose.verify is False and diagnose_options(bench_cfg).verify is False
    cfg = compose_config("bench", ["data=synthetic", "verify=true"])
    assert cfg.diagnose.verify is True and cfg.diagnose.verify_top == 1 and diagnose_options(cfg).verify is True


def test_a_finished_bench_run_again_with_verify_follows_the_advice_without_training_again(tmp_path, monkeypatch):
    """verify=true on a bench finished without it: each injected scenario's stored top advice is followed (the
    scenario is not trained or diagnosed again) and its row scored with the result; a control is left alone."""
    from ser import rundir
    from ser.diagnose import verify
    from ser.diagnose.bench import Scenario, unverified, verify_scenario
    from ser.diagnose.context import Options

    folder = tmp_path / "label_noise_30"
    for fold, ua in (("k0", 0.40), ("k1", 0.50)):
        rundir.write_json(folder / f"fold_{fold}" / "metrics.json", {"test/ua": ua})
    cause = {"id": "label_noise", "check": "label_noise", "title": "label noise", "score": 0.1, "sure": "strong",
             "advice": ["fold.exclude=suspects.csv"]}
    rundir.write_json(folder / "diagnosis" / "diagnosis.json", {"causes": [cause], "checks": {}})
    rundir.write_text(folder / "diagnosis" / "report.md", "# Diagnosis\n\nHow to read this: ...\n")
    rundir.write_json(folder / "bench_row.json", {"name": folder.name, "cause": "label_noise", "ua": 0.45,
                                                  "rank": 1, "causes": [], "wall_s": 9.0})
    retrained = []

    def retrain(run_dir, advice, out):  # what training with the advice would write: each fold 0.1 UA better
        retrained.append(advice)
        for fold, m in rundir.fold_metrics(run_dir).items():
            rundir.write_json(out / f"fold_{fold}" / "metrics.json", {"test/ua": m["test/ua"] + 0.1})
        return out

    monkeypatch.setattr(verify, "retrain", retrain)
    sc = Scenario("label_noise_30", "label_noise", "recipe")
    assert unverified(sc, folder) and not unverified(Scenario("control", None, "recipe"), folder)
    row = verify_scenario(sc, folder, Options(verify=True, verify_top=1), threads=1)
    assert retrained == [["fold.exclude=suspects.csv"]]
    assert row["advice_helped"] is True and row["verified"][0]["change"] == pytest.approx(0.1)
    assert row["ua"] == 0.45 and row["wall_s"] == 9.0 and "verify_s" in row  # the scenario's own result is kept
    assert rundir.read_json(folder / "bench_row.json") == row and not unverified(sc, folder)
    assert "## Advice, verified" in (folder / "diagnosis" / "report.md").read_text()


def test_verify_with_rejudge_follows_todays_advice_and_keeps_the_stored_causes(tmp_path, monkeypatch):
    """rejudge=true verify=true: the advice followed is the one today's rules give from the stored measurements
    (advice changed since the bench ran is what gets verified), the causes diagnosed then are kept beside."""
    from ser import rundir
    from ser.diagnose import verify
    from ser.diagnose.bench import Scenario, verify_scenario
    from ser.diagnose.check import Check
    from ser.diagnose.context import Options
    from ser.diagnose.evidence import Finding, RunSettings

    class Today(Check):
        name = "labels"

        def judge(self, m, ev):
            return [Finding("label_noise", "label noise", m["gain"], "", [f"fold.exclude={m['file']}", "x=2"],
                            interval=(0.05, 0.2))]

    folder = tmp_path / "label_noise_30"
    rundir.write_json(folder / "fold_k0" / "metrics.json", {"test/ua": 0.4})
    then = {"id": "label_noise", "check": "labels", "title": "label noise", "score": 0.1, "sure": "strong",
            "advice": ["fold.exclude=s.csv"]}
    rundir.write_json(folder / "diagnosis" / "diagnosis.json", {
        "causes": [then], "class_names": ["a", "b"], "ua": 0.4, "settings": RunSettings().__dict__,
        "checks": {"labels": {"gain": 0.1, "file": "s.csv"}}})
    rundir.write_text(folder / "diagnosis" / "report.md", "# Diagnosis\n\nHow to read this: ...\n")
    rundir.write_json(folder / "bench_row.json", {"name": folder.name, "cause": "label_noise", "ua": 0.4, "rank": 1,
                                                  "causes": [], "wall_s": 9.0})
    retrained = []

    def retrain(run_dir, advice, out):
        retrained.append(advice)
        rundir.write_json(out / "fold_k0" / "metrics.json", {"test/ua": 0.5})
        return out

    monkeypatch.setattr(verify, "retrain", retrain)
    sc = Scenario("label_noise_30", "label_noise", "recipe")
    row = verify_scenario(sc, folder, Options(verify=True, verify_top=1), 1, checks=[Today()], today=True)
    assert retrained == [["fold.exclude=s.csv", "x=2"]] and row["advice_helped"] is True
    stored = rundir.read_json(folder / "diagnosis" / "diagnosis.json")
    assert stored["causes_when_diagnosed"] == [then] and stored["causes"][0]["check"] == "labels"


def test_rejudge_scores_a_kept_scenario_under_todays_rules_from_its_stored_measurements(tmp_path):
    """rejudge=true: a scenario diagnosed under older rules (here: underfitting first) is judged again from its
    diagnosis.json, nothing retrained; what it measured and how long it took stay as they were."""
    from ser import rundir
    from ser.diagnose.bench import Scenario, rejudge
    from ser.diagnose.checks.fitting import Fitting

    fitting = {"train_ua_eval": 0.45, "test_ua_folds": 0.33, "gap": 0.12, "epochs": 20, "val_loss_rise": 1.8,
               "val_loss_rose": True, "val_loss_min_epoch": 5, "val_loss_rose_folds": 3, "curve_folds": 3,
               "train_loss_late_drop": 0.27, "still_improving": True, "capacity": 0.29, "capacity_interval": [0.2, 0.35]}
    old = [{"id": "underfitting", "score": 0.29, "sure": "strong"}]
    rundir.write_json(tmp_path / "diagnosis" / "diagnosis.json", {
        "class_names": ["a", "b"], "ua": 0.33, "settings": {}, "causes": old,
        "checks": {"fitting": fitting, "features": {"weak": 0.06, "weak_interval": [0.03, 0.09]}}})
    sc = Scenario("double_weak_overfit", ["weak_features", "overfitting"], "scratch")
    row = {"name": sc.name, "cause": sc.cause, "ua": 0.33, "wall_s": 5.0, "causes": old, "rank": None,
           "ranks": {"weak_features": None, "overfitting": None}, "both_found": False}
    new = rejudge(sc, row, tmp_path, [Fitting()])
    assert [c["id"] for c in new["causes"]] == ["overfitting"] and new["ranks"]["overfitting"] == 1
    assert new["ua"] == 0.33 and new["wall_s"] == 5.0 and not new["both_found"]
