"""The classical reference: functionals + scikit-learn on the same splits and summary files."""

import json

import numpy as np
import pytest
import torch

from ser.baselines.run import main
from ser.feature_sets import functionals
from ser.features.frontend import LogMel

pytest.importorskip("sklearn")


def test_functionals_are_six_per_row_and_see_only_valid_frames():
    frontend = LogMel()
    wave = 0.1 * torch.randn(8000)
    x = functionals(frontend, [wave, torch.cat([wave, torch.zeros(0)])])
    assert x.shape == (2, 6 * 64) and np.isfinite(x).all()
    np.testing.assert_allclose(x[0], x[1])
    louder = functionals(frontend, [wave * 10])[0]
    assert louder[:64].mean() == pytest.approx(x[0, :64].mean() + 2 * np.log(10), abs=0.05)  # mean log power


def test_kfold_baseline_writes_the_train_py_summaries(tmp_path, cache_dir, capsys):
    out = tmp_path / "base"
    results = main(["debug=smoke", "split=kfold", "split.k=2", f"paths.cache_dir={cache_dir}",
                    "data.corpus.difficulty=0.2", "classifiers=logreg,svm", f"out={out}"])
    assert set(results) == {"logreg", "svm"}
    for name in results:
        summary = json.loads((out / name / "cv_summary.json").read_text())
        assert len(summary["folds"]) == 2 and (out / name / "cv_summary.md").exists()
        assert sum(f["n_test"] for f in summary["folds"]) == 70
        fold = json.loads(next((out / name).glob("fold_*/metrics.json")).read_text())
        assert {"test/ua", "test/wa", "test/macro_f1", "val/ua", "C"} <= set(fold)
    # Easier synthetic speech, 3 training speakers: well above chance (1/7); 0.375 measured.
    assert results["logreg"]["test/ua"] > 0.25, results
    assert "| logreg |" in capsys.readouterr().out


def test_per_speaker_standardisation():
    from ser.probe import per_speaker

    X = np.array([[1.0, 10.0], [3.0, 30.0], [100.0, 0.0], [300.0, 2.0]])
    Z = per_speaker(X, ["a", "a", "b", "b"])
    np.testing.assert_allclose(Z, [[-1, -1], [1, 1], [-1, -1], [1, 1]], atol=1e-6)


def test_feature_sets_parse_and_fused_blocks_weigh_the_same():
    from ser.baselines.classifiers import BlockScaler
    from ser.baselines.run import parse_sets

    assert parse_sets("compare") == ["compare"] and parse_sets("[compare, ge2e]") == ["compare", "ge2e"]
    X = np.random.default_rng(0).normal(size=(50, 40)) * 3 + 1
    Z = BlockScaler([30, 10]).fit(X).transform(X)
    assert (Z[:, :30] ** 2).sum() == pytest.approx((Z[:, 30:] ** 2).sum(), rel=1e-6)  # equal total variance
    np.testing.assert_allclose(BlockScaler([40]).fit(X).transform(X).std(0), 1, atol=1e-6)


def test_opensmile_and_ge2e_sets_fused_and_cached(tmp_path, cache_dir, capsys):
    pytest.importorskip("opensmile")
    pytest.importorskip("resemblyzer")
    out = tmp_path / "fused"
    args = ["debug=smoke", "split=kfold", "split.k=2", f"paths.cache_dir={cache_dir}", "features=[egemaps,ge2e]",
            "features.layers=[3]", "classifiers=logreg", f"out={out}"]
    results = main(args)
    assert 0 <= results["logreg"]["test/ua"] <= 1
    assert "egemaps+ge2e" in (out / "logreg" / "cv_summary.md").read_text()
    assert len(list((cache_dir / "baselines").rglob("*.pt"))) >= 70  # the 88 eGeMAPS functionals of each clip
    again = main(args[:-1] + [f"out={tmp_path / 'again'}"])  # read back from the cache: the same result
    assert again["logreg"]["test/ua"] == results["logreg"]["test/ua"]
