"""usage: python -m ser.diagnose.thresholds benches=[<bench dir>,<bench dir>,...] [out=<dir>]

The diagnosis's thresholds, judged on a corpus they were not set on. The thresholds and scales of the
checks (when a cause is reported at all, when a consequence is explained by its cause, when a flagged
share of labels is label noise whatever retraining says, ...) are parameters fitted on fault-injection
benchmarks (python -m ser.diagnose.bench). Given finished benches of several corpora (the same recipe),
this re-judges every scenario's stored measurements (diagnosis.json: nothing is retrained) under each
setting of a grid of those parameters, and for each corpus in turn sets them on the others (the setting
with the best top-1 less the false alarms there; the shipped values win ties) and scores the held-out
corpus: leave-one-corpus-out. The shipped values' in-sample figures are printed beside, labelled.
Writes thresholds.md and thresholds.json into out= (default: the first bench's folder).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from ser.cli import check_early, run_command

PROG = "python -m ser.diagnose.thresholds"
if __name__ == "__main__":  # --help and a mistaken option are answered before torch loads
    check_early(PROG, __doc__, "thresholds", sys.argv[1:])

from ser import rundir  # noqa: E402
from ser.diagnose.bench import Corpus, Scenario, score, scored  # noqa: E402
from ser.diagnose.checks import default_checks  # noqa: E402
from ser.diagnose.stored import rejudged  # noqa: E402

# name -> (the module attributes it sets, the values tried); the first value is the shipped one
GRID = {
    "report_above": (("ser.diagnose.check", "ser.diagnose.report", "ser.diagnose.checks.*"), "REPORT_ABOVE",
                     (0.02, 0.01, 0.03)),
    "explains": (("ser.diagnose.check", "ser.diagnose.report"), "EXPLAINS",
                 (0.25, 0.5, 1.0)),
    "fitting_gap": (("ser.diagnose.checks.fitting",), "GAP", (0.2, 0.15, 0.3)),
    "loss_rise": (("ser.diagnose.checks.fitting",), "LOSS_RISE", (1.0, 0.75, 1.5)),
    "strong_share": (("ser.diagnose.checks.label_noise",), "STRONG_SHARE", (0.15, 0.1, 0.25)),
    "cause_share": (("ser.diagnose.checks.label_noise",), "CAUSE_SHARE", (0.1, 0.05, 0.15)),
    "dominant": (("ser.diagnose.checks.confusions",), "DOMINANT", (0.2, 0.3)),
    "few_steps": (("ser.diagnose.checks.fitting", "ser.diagnose.checks.data_size"), "FEW_STEPS", (60, 30, 100)),
}
FALSE_ALARM = 0.05  # what one false alarm on a control costs against top-1 when setting the thresholds


@contextlib.contextmanager
def patched(setting: dict[str, float]):
    """The grid's parameters set to ``setting`` in every module that reads them, restored after."""
    saved = []
    for name, value in setting.items():
        modules, attr, _ = GRID[name]
        for module in [m for m in _modules(modules) if hasattr(m, attr)]:
            saved.append((module, attr, getattr(module, attr)))
            setattr(module, attr, value)
    try:
        yield
    finally:
        for module, attr, value in reversed(saved):
            setattr(module, attr, value)


def _modules(patterns: tuple[str, ...]) -> list:
    """The loaded modules the patterns name (``pkg.*``: every module below ``pkg``)."""
    names = [n for n in sys.modules if any(n == p or (p.endswith(".*") and n.startswith(p[:-1])) for p in patterns)]
    return [sys.modules[n] for n in sorted(names)]


def load(bench_dir: Path) -> dict:
    """A finished bench: its corpus, and each scenario's ``Scenario`` and stored diagnosis."""
    result = rundir.read_json(bench_dir / "bench.json")
    if result is None:
        raise FileNotFoundError(f"benches: {bench_dir} holds no bench.json (run python -m ser.diagnose.bench first)")
    scenarios = []
    for row in result["scenarios"]:
        diagnosis = rundir.read_json(bench_dir / row["name"] / "diagnosis" / "diagnosis.json")
        if "error" not in row and diagnosis is not None:
            scenarios.append((Scenario(row["name"], row["cause"], row.get("base", "recipe")), diagnosis))
    counts = result.get("class_counts") or [1] * len(scenarios[0][1]["class_names"])
    corpus = Corpus(result["corpus"], "", scenarios[0][1]["class_names"], counts, 0)
    return {"corpus": corpus, "recipe": result.get("recipe", "pretrained"), "scenarios": scenarios}


def evaluate(bench: dict, setting: dict[str, float], checks) -> dict:
    """The bench's scores with every scenario re-judged under ``setting``."""
    with patched(setting):
        rows = [{"name": sc.name, "cause": sc.cause, "ua": d["ua"], "wall_s": 0.0} | scored(sc, rejudged(d, checks), checks)
                for sc, d in bench["scenarios"]]
    s = score(rows, bench["corpus"], checks)
    return {"top1": s["top1"], "mrr": s["mrr"], "false_alarms": len(s["false_alarms"]),
            "double": s["double"]["recall_at_3"], "n": s["n_injected"]}


def objective(scores: list[dict]) -> float:
    return float(np.mean([s["top1"] - FALSE_ALARM * s["false_alarms"] for s in scores]))


def leave_one_corpus_out(benches: list[dict], checks) -> dict:
    """For each bench: the grid setting best on the others, and the held-out bench's scores under it and under the
    shipped values."""
    names = list(GRID)
    settings = [dict(zip(names, values)) for values in itertools.product(*(GRID[n][2] for n in names))]
    table = [[evaluate(b, s, checks) for b in benches] for s in settings]  # settings x benches
    out = []
    for k, held in enumerate(benches):
        others = [j for j in range(len(benches)) if j != k]
        best = max(range(len(settings)), key=lambda i: (objective([table[i][j] for j in others]), i == 0))
        out.append({"held_out": held["corpus"].option, "set_on": [benches[j]["corpus"].option for j in others],
                    "setting": settings[best], "held_out_scores": table[best][k], "shipped_scores": table[0][k],
                    "set_on_scores": [table[best][j] for j in others]})
    return {"grid": {n: list(GRID[n][2]) for n in names}, "shipped": settings[0], "folds": out}


def markdown(result: dict) -> str:
    L = ["# Thresholds, leave one corpus out", "",
         f"Re-judged from the benches' stored measurements under {np.prod([len(v) for v in result['grid'].values()])} "
         "settings of " + ", ".join(f"{k} {v}" for k, v in result["grid"].items()) + " (the first value of each is "
         "shipped). Each corpus held out in turn: the setting best on the others (top-1 less "
         f"{FALSE_ALARM} per false alarm) scored on it.", "",
         "| held out | set on | setting chosen | top-1 held out | doubles held out | false alarms held out "
         "| top-1 in-sample (shipped values) |", "|---|---|---|---|---|---|---|"]
    for f in result["folds"]:
        changed = ", ".join(f"{k}={v}" for k, v in f["setting"].items() if v != result["shipped"][k]) or "the shipped"
        h, s = f["held_out_scores"], f["shipped_scores"]
        L.append(f"| {f['held_out']} | {', '.join(f['set_on'])} | {changed} | {_pct(h['top1'])} ({h['n']}) | "
                 f"{_pct(h['double'])} | {h['false_alarms']} | {_pct(s['top1'])} |")
    return "\n".join(L) + "\n"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def thresholds(cfg: DictConfig) -> dict:
    dirs = [Path(b) for b in cfg.benches]
    if len(dirs) < 2:
        raise ValueError(f"benches={list(cfg.benches)}: give at least two finished benches (one per corpus)")
    benches = [load(d) for d in dirs]
    result = leave_one_corpus_out(benches, default_checks())
    out = Path(cfg.out) if cfg.out else dirs[0]
    rundir.write_json(out / "thresholds.json", result)
    rundir.write_text(out / "thresholds.md", markdown(result))
    print(markdown(result))
    return result


def main(argv: list[str] | None = None):
    return run_command(PROG, __doc__, "thresholds", thresholds, argv)


if __name__ == "__main__":
    result = main()
    sys.exit(result if isinstance(result, int) else 0)
