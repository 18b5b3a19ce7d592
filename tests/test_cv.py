"""Cross-validation summary arithmetic, and a tiny LOSO run end to end."""

import json
from pathlib import Path

import numpy as np
import pytest

from ser.cv import summarize, to_markdown
from ser.train import train


def test_summary_arithmetic():
    folds = [
        {"fold": "a", "test_speakers": ["a"], "metrics": {"test/ua": 0.5, "test/wa": 0.6, "test/macro_f1": 0.4},
         "confusion": [[3, 1], [1, 1]]},
        {"fold": "b", "test_speakers": ["b"], "metrics": {"test/ua": 0.7, "test/wa": 0.8, "test/macro_f1": 0.6},
         "confusion": [[2, 0], [2, 4]]},
    ]
    s = summarize(folds, ["x", "y"])
    assert s["mean"]["test/ua"] == pytest.approx(0.6)
    assert s["std"]["test/ua"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert s["pooled"]["confusion_matrix"] == [[5, 1], [3, 5]]
    assert s["pooled"]["recall"] == {"x": pytest.approx(5 / 6), "y": pytest.approx(5 / 8)}
    assert s["pooled"]["ua"] == pytest.approx((5 / 6 + 5 / 8) / 2)
    assert s["pooled"]["wa"] == pytest.approx(10 / 14)
    assert [f["n_test"] for f in s["folds"]] == [6, 8]
    md = to_markdown(s)
    assert "| test/ua | 0.6000 |" in md and "| b | b | 8 | 0.7000 |" in md


def test_loso_run_writes_both_summaries(make_cfg):
    cfg = make_cfg("debug=smoke", "model=cnn", "split=loso", "data.corpus.num_speakers=3",
                   "data.corpus.utterances_per_speaker=7")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    summary = json.loads((run / "cv_summary.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == ["s01", "s02", "s03"]
    assert summary["mean"]["test/ua"] == pytest.approx(np.mean([f["test/ua"] for f in summary["folds"]]))
    assert metrics["test/ua"] == pytest.approx(summary["mean"]["test/ua"])
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert (run / "cv_summary.md").read_text().startswith("# LOSOSplit")
    assert all((run / f"fold_s0{i}" / "metrics.json").exists() for i in (1, 2, 3))
