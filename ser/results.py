"""usage: python -m ser.results <runs dir> [compare=[model:lstm,model:cnn]] [test=wilcoxon|permutation] [out=<dir>]

One table over many runs: every run and sweep job under the folder (searched recursively; a run is
a folder with .hydra/config.yaml), the config keys that differ between them as columns, test UA,
WA and macro-F1 as mean ± std over folds, then the same grouped over seeds (runs that differ only
in seed=). With compare=[A,B] (each a key:value as the table shows it, several joined by '+':
model:lstm+optimizer.lr:0.001) a paired test between the two configurations over the (seed, fold)
pairs both have: the Wilcoxon signed-rank test (exact) or a paired permutation test, so "did the
change help?" has an answer.
Runs that failed or did not finish (status.json, or no metrics.json) are listed apart, never averaged.
Writes results.md and results.csv (and results_by_config.csv) into out (default: the runs folder).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser import rundir
from ser.cli import UserError, run_command
from ser.stats import sign_flip_p, wilcoxon

METRICS = ("test/ua", "test/wa", "test/macro_f1")
# Keys that differ between runs without being a different experiment.
IGNORED = ("seed", "resume", "paths.", "data.seed", "data.corpus.seed", "optimized_metric", "data.cache_dir",
           "data.feature_cache_dir", "loader.num_workers", "loader.pin_memory")


@dataclass
class Run:
    path: Path
    settings: dict[str, str]  # group choices (model=lstm) and config leaves, as text
    seed: str
    status: str
    folds: dict[str, dict[str, float]] = field(default_factory=dict)  # fold name -> test metrics
    error: str = ""

    def mean(self, key: str) -> float:
        return float(np.mean([m[key] for m in self.folds.values()]))

    def std(self, key: str) -> float:
        values = [m[key] for m in self.folds.values()]
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def flatten(node, prefix: str = "") -> dict[str, str]:
    out = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out |= flatten(v, f"{prefix}{k}.")
    else:
        out[prefix[:-1]] = json.dumps(node) if isinstance(node, list) else str(node)
    return out


def load_run(folder: Path) -> Run:
    found = rundir.read_config(folder)
    settings = flatten(found["config"]) | found["choices"]
    status = rundir.read_status(folder)
    run = Run(folder, settings, settings.get("seed", "?"), status.get("status", ""), error=status.get("error", ""))
    summary, metrics = rundir.read_json(folder / rundir.CV_SUMMARY), rundir.read_json(folder / rundir.METRICS)
    if summary is not None:
        run.folds = {str(f["fold"]): {k: f[k] for k in METRICS if k in f} for f in summary["folds"]}
    elif metrics is not None:
        run.folds = {"test": {k: metrics[k] for k in METRICS if k in metrics}}
    if not run.folds or any(len(m) < len(METRICS) for m in run.folds.values()):
        run.folds = {}
        run.status = run.status if run.status not in ("", "finished") else "no metrics"
    elif run.status in ("", "running"):  # older runs have no status.json; metrics mean it finished
        run.status = "finished" if run.status == "" else run.status
    return run


def find_runs(root: Path) -> list[Run]:
    folders = sorted({p.parent.parent for p in root.rglob(".hydra/config.yaml")})
    return [load_run(f) for f in folders]


def differing_keys(runs: list[Run]) -> list[str]:
    """Keys whose value differs between runs; a group's leaves are left out where the group's choice
    (model=lstm) already says what they are, and shown where they vary within one choice."""
    keys = sorted(set().union(*(r.settings for r in runs)))
    differ = [k for k in keys if len({r.settings.get(k) for r in runs}) > 1 and not k.startswith(IGNORED)]
    groups = {k for k in differ if "." not in k}

    def explained(key: str) -> bool:
        group = key.split(".")[0]
        if "." not in key or group not in groups:
            return False
        values: dict[str, set] = {}
        for r in runs:
            values.setdefault(r.settings.get(group), set()).add(r.settings.get(key))
        return all(len(v) == 1 for v in values.values())

    return [k for k in differ if not explained(k)]


def condition(text: str) -> dict[str, str]:
    """``model:lstm+optimizer.lr:0.001`` (or with '=', quoted) -> {key: value}."""
    pairs = [p.strip() for p in re.split(r"[+&]", str(text)) if p.strip()]
    if not pairs or any(not re.search(r"[:=]", p) for p in pairs):
        raise UserError(f"compare: {text!r} is not key:value (several joined by '+')")
    return dict(re.split(r"[:=]", p, maxsplit=1) for p in pairs)


def matches(run: Run, cond: dict[str, str]) -> bool:
    def same(a, b):
        if a == b:
            return True
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False

    return all(same(run.settings.get(k), v) for k, v in cond.items())


def paired(runs: list[Run], a: str, b: str, test: str, metric: str = "test/ua") -> dict:
    ca, cb = condition(a), condition(b)
    side_a, side_b = _side(runs, a, ca, metric), _side(runs, b, cb, metric)
    if not side_a or not side_b:
        missing = a if not side_a else b
        raise UserError(f"compare: no finished run has {missing}; the table's columns name the values to use")
    shared = sorted(set(side_a) & set(side_b))
    if not shared:
        raise UserError(f"compare: {a} and {b} share no (seed, fold) pair; run both with the same seeds and split")
    d = np.array([side_a[k] - side_b[k] for k in shared])
    p = wilcoxon(d) if test == "wilcoxon" else sign_flip_p(d)
    return {"a": a, "b": b, "metric": metric, "pairs": len(shared), "mean_a": float(np.mean([side_a[k] for k in shared])),
            "mean_b": float(np.mean([side_b[k] for k in shared])), "mean_difference": float(d.mean()),
            "a_better": int((d > 0).sum()), "b_better": int((d < 0).sum()), "test": test, "p": p,
            "unpaired": len(side_a) + len(side_b) - 2 * len(shared)}


def _side(runs: list[Run], text: str, cond: dict[str, str], metric: str) -> dict[tuple[str, str], float]:
    side, source = {}, {}
    for r in runs:
        if not matches(r, cond):
            continue
        for fold, m in r.folds.items():
            key = (r.seed, fold)
            if key in side:
                pair = f"{source[key].path.name}, {r.path.name}"
                raise UserError(f"compare: {text} matches two runs with seed {r.seed} and fold {fold} ({pair}); "
                                "add the key that tells them apart, joined by '+'")
            side[key], source[key] = m[metric], r
    return side


def by_config(runs: list[Run], keys: list[str]) -> list[dict]:
    """Runs that differ only in seed, together: mean ± std over seeds of each run's mean over folds."""
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault(tuple(r.settings.get(k, "") for k in keys), []).append(r)
    rows = []
    for values, members in groups.items():
        row = dict(zip(keys, values)) | {"seeds": len(members), "folds": sum(len(r.folds) for r in members)}
        for m in METRICS:
            means = [r.mean(m) for r in members]
            row[m] = float(np.mean(means))
            row[m + " std"] = float(np.std(means, ddof=1)) if len(means) > 1 else None
        rows.append(row)
    return sorted(rows, key=lambda r: -r["test/ua"])


def render(root: Path, done: list[Run], other: list[Run], keys: list[str], groups: list[dict], tests: list[dict]) -> str:
    def cell(mean, std):
        return f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")

    lines = [f"# Results: {root}", "",
             f"{len(done)} finished runs; {len(other)} not finished. Mean ± std over folds; UA = mean recall over the "
             "classes present in each fold's test set.", "", "## Runs", ""]
    head = [*keys, "seed", "folds", "test UA", "test WA", "test macro-F1", "run"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in sorted(done, key=lambda r: -r.mean("test/ua")):
        values = [r.settings.get(k, "") for k in keys] + [r.seed, str(len(r.folds))]
        values += [cell(r.mean(m), r.std(m) if len(r.folds) > 1 else None) for m in METRICS]
        values.append(str(r.path.relative_to(root)))
        lines.append("| " + " | ".join(values) + " |")
    lines += ["", "## Configurations, over seeds", "",
              "Each run's mean over folds, then mean ± std over the runs that differ only in seed.", ""]
    head = [*keys, "seeds", "folds", "test UA", "test WA", "test macro-F1"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for g in groups:
        values = [g[k] for k in keys] + [str(g["seeds"]), str(g["folds"])] + [cell(g[m], g[m + " std"]) for m in METRICS]
        lines.append("| " + " | ".join(values) + " |")
    for t in tests:
        lines += ["", f"## Paired test: {t['a']} against {t['b']}", "",
                  f"{t['pairs']} (seed, fold) pairs; {t['metric']} {t['mean_a']:.3f} against {t['mean_b']:.3f} "
                  f"(mean difference {t['mean_difference']:+.3f}; {t['a_better']} pairs better, {t['b_better']} worse). "
                  f"{'Wilcoxon signed-rank (exact)' if t['test'] == 'wilcoxon' else 'Paired permutation'} test, "
                  f"two-sided: **p = {t['p']:.4f}**."
                  + (f" {t['unpaired']} folds without a partner were left out." if t["unpaired"] else "")]
    if other:
        lines += ["", "## Not finished (left out of every mean)", "", "| run | status | error |", "|---|---|---|"]
        lines += [f"| {r.path.relative_to(root)} | {r.status} | {r.error[:200]} |" for r in other]
    return "\n".join(lines) + "\n"


def results(cfg) -> int:
    root = Path(str(cfg.dir))
    if not root.is_dir():
        raise FileNotFoundError(f"dir={root}: no such folder")
    if cfg.test not in ("wilcoxon", "permutation"):
        raise UserError(f"test={cfg.test}: choose wilcoxon or permutation")
    runs = find_runs(root)
    done = [r for r in runs if r.folds and r.status == "finished"]
    other = [r for r in runs if r not in done]
    if not done:
        raise UserError(f"dir={root}: no finished run found (a run folder holds .hydra/config.yaml and metrics.json)")
    keys = differing_keys(done)
    groups = by_config(done, keys)
    tests = []
    if cfg.compare:
        if len(cfg.compare) != 2:
            raise UserError(f"compare={list(cfg.compare)}: name two configurations, compare=[A,B]")
        tests.append(paired(done, str(cfg.compare[0]), str(cfg.compare[1]), cfg.test))
    out = Path(str(cfg.out)) if cfg.out else root
    out.mkdir(parents=True, exist_ok=True)
    text = render(root, done, other, keys, groups, tests)
    (out / "results.md").write_text(text)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*keys, "seed", "folds", *(f"{m} {s}" for m in METRICS for s in ("mean", "std")), "status", "run"])
        for r in done + other:
            stats = [f"{fn(m):.4f}" if r.folds else "" for m in METRICS for fn in (r.mean, r.std)]
            writer.writerow([r.settings.get(k, "") for k in keys] + [r.seed, len(r.folds), *stats, r.status, str(r.path)])
    with open(out / "results_by_config.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(groups[0]))
        writer.writeheader()
        writer.writerows(groups)
    print(text)
    print(f"written: {out / 'results.md'}, {out / 'results.csv'}, {out / 'results_by_config.csv'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and "=" not in argv[0] and not argv[0].startswith("-"):
        argv[0] = f"dir={argv[0]}"  # python -m ser.results runs/
    return run_command("python -m ser.results", __doc__, "results", results, argv)


if __name__ == "__main__":
    sys.exit(main())
