"""Scale-out and fault handling: DDP on CPU, kill and resume, fold skipping, NaN loss, bad output
folders, incompatible checkpoints, cluster launchers, sharded samplers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from ser.data import samplers
from ser.data.samplers import BalancedBatchSampler, BucketBatchSampler
from ser.models.loss import ClassificationLoss
from ser.train import check_compatible, train
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd=ROOT, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kw)


# -- distributed ------------------------------------------------------------------------------
@pytest.mark.parametrize("replicas", [2, 3])
def test_samplers_shard_per_rank(monkeypatch, replicas):
    lengths, labels = list(range(100, 1100, 10)), [i % 3 for i in range(100)]
    seen_eval, train_counts = [], set()
    for rank in range(replicas):
        monkeypatch.setattr(samplers, "world", lambda rank=rank: (replicas, rank))
        evaluation = BucketBatchSampler(lengths, 8, shuffle=False)
        batches = list(evaluation)
        assert len(batches) == len(evaluation)
        seen_eval += [i for b in batches for i in b]
        for sampler in (BucketBatchSampler(lengths, 8, seed=1), BalancedBatchSampler(lengths, labels, 8, seed=1)):
            sampler.set_epoch(3)
            batches = list(sampler)
            assert len(batches) == len(sampler)
            train_counts.add(len(batches))
            spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
            assert sum(spread) / len(spread) < 250  # still length-bucketed on every rank (random batches: ~700)
    assert sorted(seen_eval) == list(range(100))  # evaluation: each item exactly once over all ranks
    assert len(train_counts) == 1  # training: the same number of steps on every rank (DDP needs it)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_metrics_file(tmp_path):
    run = tmp_path / "ddp"
    proc = cli("debug=smoke", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.run.dir={run}",
               f"paths.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.relative_to(run) for p in run.rglob("metrics.json")] == [Path("metrics.json")]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test/ua"] <= 1
    assert "GLOBAL_RANK: 1" in proc.stderr + proc.stdout + (run / "train.log").read_text() + "".join(
        p.read_text() for p in run.glob("train_ddp_process_*.log"))


# -- kill and resume --------------------------------------------------------------------------
@pytest.mark.slow
def test_killed_run_resumes_to_the_same_number_of_epochs(tmp_path, caplog):
    common = ["debug=smoke", "model=cnn", "trainer.max_epochs=5", "trainer.limit_train_batches=3"]
    run, cache = tmp_path / "killed", tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "train.py", *common, f"paths.cache_dir={cache}", f"hydra.run.dir={run}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # mid-way through a later epoch
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "metrics.json").exists()
    killed_at = torch.load(last, weights_only=True)["epoch"]
    with caplog.at_level("INFO"):  # resumed in this process: the same code path as the CLI, one start-up less
        train(compose_config([*common, "resume=true"], run, cache))
    assert "resuming fold" in caplog.text
    final = torch.load(last, weights_only=True)
    assert killed_at < final["epoch"]
    # last.ckpt is the last epoch's (not a copy of the best one), and the resumed run ran no extra epochs
    assert (final["epoch"], final["global_step"]) == (4, 5 * 3)
    assert json.loads((run / "metrics.json").read_text())["test/ua"] >= 0


def test_cross_validation_resume_skips_finished_folds(make_cfg, caplog):
    cfg = make_cfg("debug=smoke", "model=cnn", "split=kfold", "split.k=2")
    first = train(cfg)
    run = Path(cfg.paths.output_dir)
    folds = sorted(p for p in run.glob("fold_*") if p.is_dir())
    assert len(folds) == 2
    kept = (folds[0] / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    # A crash during the second fold: its directory is incomplete, the summaries were never written.
    for p in (folds[1] / "fold_result.json", folds[1] / "metrics.json", run / "cv_summary.json", run / "metrics.json"):
        p.unlink()
    with open_dict(cfg):
        cfg.resume = True
    with caplog.at_level("INFO"):
        again = train(cfg)
    assert (folds[0] / "checkpoints" / "last.ckpt").stat().st_mtime_ns == kept  # not retrained
    assert "finished before, skipped" in caplog.text
    assert json.loads((run / "cv_summary.json").read_text())["folds"][0]["fold"] == folds[0].name[5:]
    assert again["test/ua"] == pytest.approx(first["test/ua"])


# -- NaN, output folder, checkpoints -----------------------------------------------------------
def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(make_cfg, monkeypatch):
    calls = {"n": 0}
    original = ClassificationLoss.forward

    def flaky(self, logits, labels):
        calls["n"] += 1
        loss = original(self, logits, labels)
        return loss * float("nan") if calls["n"] > 4 else loss  # the first epoch (3 steps + val) is fine

    monkeypatch.setattr(ClassificationLoss, "forward", flaky)
    cfg = make_cfg("debug=smoke", "model=cnn", "trainer.max_epochs=3")
    with pytest.raises(FloatingPointError, match="last good checkpoint") as err:
        train(cfg)
    assert "optimizer.lr" in str(err.value)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    weights = [v for v in state["state_dict"].values() if v.is_floating_point()]
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in weights)


def test_unwritable_or_full_output_fails_before_loading_data(make_cfg, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = make_cfg("data=emodb", "data.root=/nonexistent/emodb")  # loading data first would fail differently
    with open_dict(cfg):
        cfg.paths.output_dir = str(blocker / "run")
    with pytest.raises(PermissionError, match="paths.output_dir=.*not writable"):
        train(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "full")
    monkeypatch.setattr("ser.train.shutil.disk_usage", lambda p: type("U", (), {"free": 10 * 2**20})())
    with pytest.raises(OSError, match="10 MiB free"):
        train(cfg)


def test_incompatible_checkpoint_says_what_differs(make_cfg):
    cfg = make_cfg("debug=smoke", "model=cnn")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    names = ["neutral", "happiness", "sadness", "anger", "fear", "disgust", "boredom"]
    check_compatible(last, cfg, names)  # the same config: fine
    with pytest.raises(ValueError, match=r"trained on classes .* but this config gives \['anger', 'sadness'\]"):
        check_compatible(last, cfg, ["anger", "sadness"])
    other = make_cfg("debug=smoke", "model=cnn", "features.n_mels=40")
    with pytest.raises(ValueError, match="features.n_mels: 64 \\(checkpoint\\) vs 40 \\(config\\)"):
        check_compatible(last, other, names)
    resumed = make_cfg("debug=smoke", "model=cnn", "data.labels=[anger,sadness]", "resume=true")
    with pytest.raises(ValueError, match="trained on classes"):
        train(resumed)


def test_same_seed_gives_an_identical_metrics_file(make_cfg, tmp_path):
    cfg = make_cfg("debug=smoke", "model=lstm")
    train(cfg)
    first = (Path(cfg.paths.output_dir) / "metrics.json").read_bytes()
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "again")
    train(cfg)
    assert (tmp_path / "again" / "metrics.json").read_bytes() == first


# -- launchers ------------------------------------------------------------------------------
def test_cluster_launchers_compose():
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        slurm = compose("train", overrides=["hydra/launcher=submitit_slurm", "trainer=ddp"], return_hydra_config=True)
        joblib = compose("train", overrides=["hydra/launcher=joblib"], return_hydra_config=True)
    assert "SlurmLauncher" in slurm.hydra.launcher._target_ and slurm.trainer.strategy == "ddp"
    assert "JoblibLauncher" in joblib.hydra.launcher._target_


@pytest.mark.slow
def test_joblib_launcher_runs_each_job_and_writes_a_sweep_summary(tmp_path):
    sweep = tmp_path / "sweep"
    proc = cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "debug=smoke", "model=cnn,lstm",
               f"hydra.sweep.dir={sweep}", f"paths.cache_dir={tmp_path / 'cache'}",
               env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == ["0", "1"]
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("job,overrides,val/ua,test/ua")
    assert "model=lstm" in (sweep / "summary.md").read_text()
    # the results table over the real sweep: both jobs finished (status.json), model the differing column
    from ser.results import main as results

    assert results([str(tmp_path), f"out={tmp_path / 'table'}"]) == 0
    table = (tmp_path / "table" / "results.md").read_text()
    assert "2 finished runs; 0 not finished" in table and "| model |" in table
    assert all(json.loads((sweep / j / "status.json").read_text())["status"] == "finished" for j in ("0", "1"))
