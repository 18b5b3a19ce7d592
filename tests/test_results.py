"""python -m ser.results: finished runs found recursively, differing keys as columns, seeds grouped,
a paired test over matching folds and seeds, failed runs listed apart."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ser.results import main
from ser.stats import sign_flip_p, wilcoxon


def fake_run(folder: Path, model: str, seed: int, uas: list[float] | None, lr: float = 1e-3, status: str = "finished"):
    """A run folder as train.py leaves it: .hydra/config.yaml and hydra.yaml, status.json, metrics and cv_summary."""
    (folder / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "model": {"_target_": f"x.{model}", "hidden": 8}, "optimizer": {"lr": lr},
              "paths": {"output_dir": str(folder)}}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    choices = {"model": model, "hydra/launcher": "basic"}
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    error = {"error": "ValueError: boom"} if uas is None else {}
    (folder / "status.json").write_text(json.dumps({"status": status} | error))
    if uas is None:
        return
    folds = [{"fold": f"{i:02d}", "test/ua": ua, "test/wa": ua, "test/macro_f1": ua - 0.05} for i, ua in enumerate(uas)]
    (folder / "cv_summary.json").write_text(json.dumps({"folds": folds}))
    (folder / "metrics.json").write_text(json.dumps({"test/ua": float(np.mean(uas)), "test/wa": 0, "test/macro_f1": 0}))


def test_results_table_groups_seeds_and_tests_a_change(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for seed in (1, 2, 3):
        base = rng.uniform(0.4, 0.6, size=5)
        fake_run(tmp_path / "sweep" / "2026-11-26" / f"lstm_{seed}", "lstm", seed, list(base + 0.05))
        fake_run(tmp_path / f"cnn_{seed}", "cnn", seed, list(base))
    fake_run(tmp_path / "cnn_lr", "cnn", 1, [0.3] * 5, lr=1e-2)
    fake_run(tmp_path / "crashed", "cnn", 4, None, status="failed")
    (tmp_path / "cnn_1" / "fold_00" / ".hydra").mkdir(parents=True)  # fold folders are not runs

    assert main([str(tmp_path), "compare=[model:lstm,model:cnn+optimizer.lr:0.001]"]) == 0
    text = (tmp_path / "results.md").read_text()
    assert "| model | optimizer.lr | seed | folds | test UA |" in text  # model.* leaves follow from model=; seed is grouped
    assert "7 finished runs; 1 not finished" in text
    assert "| crashed | failed | ValueError: boom |" in text
    by_config = list(csv.DictReader((tmp_path / "results_by_config.csv").open()))
    lstm = next(r for r in by_config if r["model"] == "lstm")
    cnn = next(r for r in by_config if r["model"] == "cnn" and r["optimizer.lr"] == "0.001")
    assert lstm["seeds"] == "3" and lstm["folds"] == "15"
    assert float(lstm["test/ua"]) == pytest.approx(float(cnn["test/ua"]) + 0.05)
    # 15 pairs, each 0.05 better: the exact two-sided signed-rank p is 2 / 2**15
    assert "15 (seed, fold) pairs" in text and f"p = {2 / 2**15:.4f}" in text
    assert len(list(csv.reader((tmp_path / "results.csv").open()))) == 1 + 8
    assert "Paired test" in capsys.readouterr().out


def test_results_refuses_ambiguous_or_empty_comparisons(tmp_path, capsys):
    fake_run(tmp_path / "a", "cnn", 1, [0.5, 0.6])
    fake_run(tmp_path / "b", "cnn", 1, [0.4, 0.6], lr=1e-2)
    assert main([str(tmp_path), "compare=[optimizer.lr:0.001,model:lstm]"]) == 2
    assert "no finished run has model:lstm" in capsys.readouterr().err
    assert main([str(tmp_path), "compare=[model:cnn,optimizer.lr:0.01]"]) == 2
    assert "matches two runs" in capsys.readouterr().err
    assert main([str(tmp_path / "nowhere")]) == 2


def test_signed_rank_and_permutation_p_values():
    scipy_stats = pytest.importorskip("scipy.stats")
    d = np.random.default_rng(1).normal(0.02, 0.05, size=12)
    assert wilcoxon(d) == pytest.approx(scipy_stats.wilcoxon(d, method="exact").pvalue, rel=1e-9)
    assert wilcoxon(np.zeros(5)) == 1.0
    assert sign_flip_p(np.full(10, 0.1)) == pytest.approx(2 / 2**10)
    assert 0.2 < sign_flip_p(np.array([0.1, -0.1, 0.05, -0.05, 0.02])) <= 1.0
