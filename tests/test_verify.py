"""ser.diagnose verify=true: the advice of the top causes is followed (the run retrained with its own overrides plus
the advice, same folds and seed) and the change is reported per fold with a paired sign-flip test."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ser.diagnose.bench import Corpus, Scenario, score, scored
from ser.diagnose.check import Check
from ser.diagnose.checks import default_checks
from ser.diagnose.context import Options
from ser.diagnose.core import diagnose
from ser.diagnose.evidence import Finding
from ser.diagnose.verify import compare, run_overrides, target
from ser.stats import sign_flip_p
from tests.conftest import ROOT


def test_the_sign_flip_test_is_exact_over_folds():
    assert sign_flip_p(np.array([0.1, 0.2, 0.05, 0.3, 0.1]), "greater") == pytest.approx(1 / 32)  # all five better
    assert sign_flip_p(np.array([-0.1, -0.2, -0.05]), "greater") == pytest.approx(1.0)
    assert 0.3 < sign_flip_p(np.array([0.1, -0.1, 0.05, -0.04]), "greater") < 0.7


def test_compare_pairs_the_folds_and_targets_the_causes_metric():
    before = {"a": {"test/ua": 0.5, "test/recall/fear": 0.2}, "b": {"test/ua": 0.6, "test/recall/fear": 0.4}}
    after = {"a": {"test/ua": 0.55, "test/recall/fear": 0.5}, "b": {"test/ua": 0.58, "test/recall/fear": 0.6}}
    checks = default_checks()
    name, keys = target({"id": "imbalance", "check": "imbalance"}, {"imbalance": {"rare": ["fear"]}}, checks)
    assert keys == ["test/recall/fear"] and "fear" in name
    got = compare(before, after, keys)
    assert got["change"] == pytest.approx(0.25) and got["helped"] and got["folds_better"] == 2
    assert compare(before, after, ["test/ua"])["change"] == pytest.approx(0.015)
    assert target({"id": "label_noise", "check": "label_noise"}, {}, checks)[1] == ["test/ua"]


class Advises(Check):
    """A throwaway check written against the public contract only: it always finds one cause, whose advice is to
    train three epochs instead of one. Nothing in the report, verify or the bench names it."""

    name, title = "advises", "Advises"
    causes = ("too_few_epochs",)

    def per_fold(self, view):
        return {"epochs": 1}

    def measure(self, ev, run):
        return {"folds": len(ev.folds)}

    def judge(self, m, ev):
        return [Finding("too_few_epochs", "too few epochs", 0.2, "one epoch", ["trainer.max_epochs=3"], "")]

    def section(self, m, ev):
        return ["## Advises", "", f"Measured on {m['folds']} folds.", ""]

    def fold_columns(self, fold, ev):
        return {"epochs": ("epochs trained", float(fold.extra[self.name]["epochs"]))}

    def verify_metric(self, finding, m):
        return "UA after more epochs", ["test/ua"]

    def absent_by_construction(self, class_counts):
        return True

    def bench_scores(self, m):
        return {"Folds the throwaway check saw": float(m["folds"])}


@pytest.mark.slow
def test_a_new_check_reaches_the_report_verify_and_the_bench_through_its_contract(tmp_path):
    run = tmp_path / "run"
    common = ["debug=smoke", "split=kfold", "split.k=2", f"paths.cache_dir={tmp_path / 'cache'}"]
    done = subprocess.run([sys.executable, "train.py", *common, f"hydra.run.dir={run}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hydra.run.dir" not in " ".join(run_overrides(run)) and "split.k=2" in run_overrides(run)
    checks = [Advises()]
    report = diagnose(run, Options(verify=True, verify_top=2), checks=checks)
    ev = json.loads((report.parent / "diagnosis.json").read_text())
    assert ev["checks"]["advises"] == {"folds": 2} and ev["causes"][0]["check"] == "advises"
    assert [r["epochs"] for r in ev["per_fold"]] == [1.0, 1.0]
    # verify: retrained with the advice, scored on the metric the check named
    (result,) = ev["verified"]
    assert result["id"] == "too_few_epochs" and result["advice"] == ["trainer.max_epochs=3"]
    assert result["metric"] == "UA after more epochs" and len(result["folds"]) == 2 and 0 <= result["p"] <= 1
    again = report.parent / "verify" / "too_few_epochs"
    assert "trainer.max_epochs=3" in (again / "overrides.txt").read_text()
    for fold in result["folds"]:  # the same folds: the same test speakers
        ours = json.loads((run / f"fold_{fold}" / "fold_result.json").read_text())
        theirs = json.loads((again / f"fold_{fold}" / "fold_result.json").read_text())
        assert ours["test_speakers"] == theirs["test_speakers"]
        assert theirs["metrics"]["test/ua"] == pytest.approx(result["after"][result["folds"].index(fold)], abs=1e-4)
    # the report: its cause ranked, its section, its per-fold column, the verified advice
    text = report.read_text()
    assert "1. **too few epochs**" in text and "## Advises" in text and "| epochs trained |" in text
    assert "## Advice, verified" in text and "`trainer.max_epochs=3`" in text
    assert text.index("## Advice, verified") < text.index("How to read this:")
    # the bench: scored as an injected cause, a false alarm on a control (absent by construction), its own numbers
    corpus = Corpus("synthetic", str(tmp_path), ev["class_names"], [10] * len(ev["class_names"]), 5)
    injected = Scenario("fewer_epochs", "too_few_epochs", "scratch")
    control = Scenario("control", None, "scratch")
    rows = [{"name": sc.name, "cause": sc.cause, "ua": ev["ua"], "wall_s": 1.0} | scored(sc, ev, checks)
            for sc in (injected, control)]
    s = score(rows, corpus, checks)
    assert s["top1"] == 1.0 and s["per_cause"]["too_few_epochs"]["n"] == 1 and s["n_verified"] == 1
    assert [a["cause"] for a in s["false_alarms"]] == ["too_few_epochs"] and s["absent_in_control"] == ["too_few_epochs"]
    assert s["detection"] == {"Folds the throwaway check saw": {"fewer_epochs": 2.0, "control": 2.0}}


def test_advice_replaces_what_it_changes_in_the_runs_overrides():
    from ser.diagnose.verify import followed

    run = ["data=emodb", "features=mfcc", "features.n_mfcc=4", "model=pool", "loss.label_smoothing=0.0", "+trainer.x=1"]
    out = followed(run, ["features=logmel", "loss.label_smoothing=0.1"])
    assert out == ["data=emodb", "model=pool", "+trainer.x=1", "features=logmel", "loss.label_smoothing=0.1"]
    assert followed(run, []) == run
