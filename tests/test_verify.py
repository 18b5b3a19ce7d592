"""ser.diagnose verify=true: the advice of the top causes is followed (the run retrained with its own overrides plus
the advice, same folds and seed) and the change is reported per fold with a paired sign-flip test."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ser.diagnose.checks import Check
from ser.diagnose.core import diagnose
from ser.diagnose.evidence import Finding
from ser.diagnose.verify import compare, run_overrides, sign_flip_p, target
from tests.conftest import ROOT


def test_the_sign_flip_test_is_exact_over_folds():
    assert sign_flip_p(np.array([0.1, 0.2, 0.05, 0.3, 0.1])) == pytest.approx(1 / 32)  # all five better
    assert sign_flip_p(np.array([-0.1, -0.2, -0.05])) == pytest.approx(1.0)
    assert 0.3 < sign_flip_p(np.array([0.1, -0.1, 0.05, -0.04])) < 0.7


def test_compare_pairs_the_folds_and_targets_the_causes_metric():
    before = {"a": {"test/ua": 0.5, "test/recall/fear": 0.2}, "b": {"test/ua": 0.6, "test/recall/fear": 0.4}}
    after = {"a": {"test/ua": 0.55, "test/recall/fear": 0.5}, "b": {"test/ua": 0.58, "test/recall/fear": 0.6}}
    name, keys = target({"id": "imbalance"}, {"imbalance": {"rare": ["fear"]}})
    assert keys == ["test/recall/fear"] and "fear" in name
    got = compare(before, after, keys)
    assert got["change"] == pytest.approx(0.25) and got["helped"] and got["folds_better"] == 2
    assert compare(before, after, ["test/ua"])["change"] == pytest.approx(0.015)
    assert target({"id": "label_noise"}, {})[1] == ["test/ua"]


class Advises(Check):
    """A check that always finds one cause, whose advice is to train three epochs instead of one."""

    name, title = "advises", "Advises"

    def judge(self, m, ev):
        return [Finding("too_few_epochs", "too few epochs", 0.2, "one epoch", ["trainer.max_epochs=3"], "")]


def test_verify_retrains_with_the_advice_and_reports_the_change(tmp_path):
    run = tmp_path / "run"
    common = ["debug=smoke", "split=kfold", "split.k=2", f"paths.cache_dir={tmp_path / 'cache'}"]
    done = subprocess.run([sys.executable, "train.py", *common, f"hydra.run.dir={run}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hydra.run.dir" not in " ".join(run_overrides(run)) and "split.k=2" in run_overrides(run)
    report = diagnose(run, checks=[Advises()], verify=True, verify_top=2)
    ev = json.loads((report.parent / "diagnosis.json").read_text())
    (result,) = ev["verified"]
    assert result["id"] == "too_few_epochs" and result["advice"] == ["trainer.max_epochs=3"]
    assert len(result["folds"]) == 2 and 0 <= result["p"] <= 1
    again = report.parent / "verify" / "too_few_epochs"
    assert "trainer.max_epochs=3" in (again / "overrides.txt").read_text()
    for fold in result["folds"]:  # the same folds: the same test speakers
        ours = json.loads((run / f"fold_{fold}" / "fold_result.json").read_text())
        theirs = json.loads((again / f"fold_{fold}" / "fold_result.json").read_text())
        assert ours["test_speakers"] == theirs["test_speakers"]
        assert theirs["metrics"]["test/ua"] == pytest.approx(result["after"][result["folds"].index(fold)], abs=1e-4)
    text = report.read_text()
    assert "## Advice, verified" in text and "`trainer.max_epochs=3`" in text
    assert text.index("## Advice, verified") < text.index("How to read this:")


def test_advice_replaces_what_it_changes_in_the_runs_overrides():
    from ser.diagnose.verify import followed

    run = ["data=emodb", "features=mfcc", "features.n_mfcc=4", "model=pool", "loss.label_smoothing=0.0", "+trainer.x=1"]
    out = followed(run, ["features=logmel", "loss.label_smoothing=0.1"])
    assert out == ["data=emodb", "model=pool", "+trainer.x=1", "features=logmel", "loss.label_smoothing=0.1"]
    assert followed(run, []) == run
