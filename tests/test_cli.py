"""One config path for every command: unknown keys and wrong values name what is valid, before any
data is loaded; user errors end in one message and exit status 2; failed runs say so in status.json."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ser.cli import UserError, check_overrides, group_options

ROOT = Path(__file__).resolve().parents[1]


def train_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


def test_a_misspelt_key_names_the_group_keys_and_the_closest():
    with pytest.raises(UserError) as err:
        check_overrides("train", ["optimizer.lrr=1e-3"])
    message = str(err.value)
    assert "optimizer.lr" in message and "optimizer.weight_decay" in message and "Did you mean 'optimizer.lr'" in message
    with pytest.raises(UserError, match="Did you mean 'trainer.max_epochs'"):
        check_overrides("train", ["trainer.max_epoch=3"])
    with pytest.raises(UserError, match="Top-level options: .*seed"):
        check_overrides("train", ["sed=3"])


def test_values_of_the_wrong_kind_and_unknown_group_options_are_refused():
    with pytest.raises(UserError, match=r"trainer.max_epochs=abc: expected an integer \(default 20\)"):
        check_overrides("train", ["trainer.max_epochs=abc"])
    with pytest.raises(UserError, match="expected a number"):
        check_overrides("train", ["optimizer.lr=fast"])
    with pytest.raises(UserError, match="expected a list"):
        check_overrides("diagnose", ["run=x", "snrs=10"])
    choices = "choose from cnn, cnn_lstm, lstm, pool. Did you mean 'model=lstm'"
    with pytest.raises(UserError, match=f"model=lsmt: no such option; {choices}"):
        check_overrides("train", ["model=lsmt"])
    assert "_common" not in group_options("data")


def test_valid_command_lines_pass_sweeps_and_group_keys_included():
    check_overrides("train", ["trainer.max_epochs=3", "optimizer.lr=1e-3,1e-4", "model=cnn,lstm", "model.depth=2",
                              "data=emodb", "data.root=/x", "trainer.precision=bf16-mixed", "+optimizer.foo=1",
                              "hydra.run.dir=/tmp/x", "trainer.max_epochs=null", "optimizer.lr=${seed}"])
    check_overrides("train", ["optimizer.lr=interval(1e-4,1e-2)"])  # an Optuna range: left to the sweeper
    with pytest.raises(UserError, match="unknown option 'model.hiden'"):
        check_overrides("train", ["model=cnn,lstm", "model.hiden=3"])


def test_train_fails_fast_with_status_2_and_a_short_message(tmp_path):
    for args, expect in ((["optimizer.lrr=1e-3"], "Did you mean 'optimizer.lr'"),
                         (["trainer.max_epochs=abc"], "expected an integer (default 20)")):
        proc = train_cli(*args, f"hydra.run.dir={tmp_path / 'run'}")
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert expect in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 4
        assert not (tmp_path / "run").exists()  # refused before Hydra made a run folder


def test_a_component_that_cannot_be_built_fails_before_the_data_and_marks_the_run(tmp_path):
    run = tmp_path / "run"
    proc = train_cli("+optimizer.lrr=1e-3", "debug=smoke", f"hydra.run.dir={run}", f"paths.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "optimizer (torch.optim.AdamW) cannot be built" in proc.stderr and "'lrr'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists()  # the synthetic corpus was never generated
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "lrr" in status["error"]
    assert "cannot be built" in (run / "train.log").read_text()


def test_full_error_shows_the_traceback(monkeypatch, capsys):
    from ser.diagnose.__main__ import main

    assert main(["run=/nonexistent/run", "snr=[10]"]) == 2  # meant snrs=: refused, not ignored
    err = capsys.readouterr().err
    assert "unknown option 'snr'" in err and "Did you mean 'snrs'" in err
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(UserError):
        main(["run=/nonexistent/run", "snr=[10]"])


def test_every_command_has_help_with_its_options(capsys):
    from ser.baselines.run import main as baselines
    from ser.diagnose.__main__ import main as diagnose
    from ser.export import main as export
    from ser.inspect import main as inspect
    from ser.predict import main as predict
    from ser.results import main as results

    for main, options in ((inspect, ["data.root=", "data: crema_d, emodb"]),
                          (diagnose, ["run=???", "snrs=[40, 20, 10, 5, 0]"]), (predict, ["ckpt=???", "window_s=null"]),
                          (export, ["format=torchscript"]),
                          (baselines, ["classifiers=[svm, logreg]"]), (results, ["dir=???", "test=wilcoxon"])):
        assert main(["--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: python -m ser."), out[:200]
        assert all(o in out for o in options), (main.__module__, out)


def test_missing_inputs_are_user_errors(tmp_path, capsys):
    from ser.inspect import main as inspect
    from ser.predict import main as predict

    assert predict(["input=x.wav"]) == 2
    assert "ckpt" in capsys.readouterr().err  # a required option left out
    assert predict([f"ckpt={tmp_path / 'none.ckpt'}", "input=x.wav"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert inspect(["data=emodb", f"data.root={tmp_path / 'nowhere'}"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_readme_pointers_in_messages_name_sections_that_exist():
    headings = {re.sub(r"^#+\s*", "", line).strip() for line in (ROOT / "README.md").read_text().splitlines()
                if line.startswith("#")}
    pointers = [m for path in (ROOT / "ser").rglob("*.py")
                for m in re.findall(r"README\.md, '([^']+)'", path.read_text())]
    assert pointers, "no README pointers found: the pattern changed"
    assert all(p in headings for p in pointers), [p for p in pointers if p not in headings]


def test_a_key_typed_under_its_old_group_names_its_new_one():
    with pytest.raises(UserError, match="'batch_size' is 'loader.batch_size'"):
        check_overrides("train", ["data.batch_size=8"])
    with pytest.raises(UserError, match="'exclude' is 'fold.exclude'"):
        check_overrides("train", ["data.exclude=x.csv"])
