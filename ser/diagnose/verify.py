"""``verify=true``: follow the diagnosis's advice and measure whether it helped.

For each of the top ``verify_top`` causes with advice, the run is trained again with the run's own
overrides (``<run>/.hydra/overrides.yaml``) plus the advice, on the same folds and seed, and each
fold's metric the cause is about is compared with the run's own: UA for most causes (at the noise or
channel the test audio had, for a mismatch; on the held-out corpus, for corpus shift); the mean recall
of the rare classes for imbalance. The change is tested over folds with an exact paired sign-flip
(permutation) test: ``p`` is the chance of a mean change at least this large were the advice
neither helping nor hurting.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import open_dict

from ser import rundir
from ser.build import upgrade_overrides
from ser.cli import compose_config
from ser.diagnose.check import Check
from ser.stats import sign_flip_p
from ser.train import train

log = logging.getLogger(__name__)
SKIPPED = ("hydra.", "resume", "paths.")  # overrides of the original run that must not follow it


def run_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides the run was trained with (``rundir.read_overrides``), those that must not follow
    it left out, keys moved since renamed (``ser.build.upgrade_overrides``)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"verify=true retrains the run with its own overrides, read from {path}, which is "
                                "missing: train.py writes it; pass a run directory of train.py")
    return upgrade_overrides([o for o in rundir.read_overrides(run_dir) if not o.lstrip("+~").startswith(SKIPPED)])


def followed(overrides: list[str], advice: list[str]) -> list[str]:
    """The run's overrides with the advice applied: an advised ``key=value`` replaces the run's own value of that
    key, and an advised config group (``features=logmel``) drops the run's options of the group it replaces
    (``features.n_mfcc=4`` belongs to ``features=mfcc``), so the composed config is the one advised."""
    def key(o: str) -> str:
        return o.lstrip("+~").split("=", 1)[0]

    advised = {key(a) for a in advice}
    groups = {k for k in advised if "." not in k}
    kept = [o for o in overrides if key(o) not in advised and key(o).split(".", 1)[0] not in groups]
    return kept + list(advice)


def target(finding: dict, measured: dict, checks: list[Check]) -> tuple[str, list[str]]:
    """What a cause's advice should improve: a name and the metrics.json keys averaged per fold (the ``verify_metric``
    of the check that reported it)."""
    check = next(c for c in checks if c.name == finding["check"])
    return check.verify_metric(finding, measured.get(check.name) or {})


def compare(before: dict[str, dict], after: dict[str, dict], keys: list[str]) -> dict:
    """Per fold the mean of ``keys`` before and after, their changes, the mean change and its sign-flip p."""
    folds = [f for f in before if f in after and all(k in before[f] and k in after[f] for k in keys)]
    b = np.array([np.mean([before[f][k] for k in keys]) for f in folds])
    a = np.array([np.mean([after[f][k] for k in keys]) for f in folds])
    d = a - b
    return {"folds": folds, "before": b.round(4).tolist(), "after": a.round(4).tolist(),
            "mean_before": float(b.mean()) if len(b) else float("nan"),
            "mean_after": float(a.mean()) if len(a) else float("nan"),
            "change": float(d.mean()) if len(d) else float("nan"), "p": sign_flip_p(d, "greater"),
            "helped": bool(len(d) and d.mean() > 0), "folds_better": int((d > 0).sum()), "folds_worse": int((d < 0).sum())}


def retrain(run_dir: Path, advice: list[str], out: Path) -> Path:
    """Train the run again with ``advice`` added to its overrides, into ``out`` (resumed when it was cut short)."""
    overrides = followed(run_overrides(run_dir), advice)
    cfg = compose_config("train", overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.resume = True  # a verification cut short continues where it stopped
    rundir.write_text(out / "overrides.txt", "\n".join(overrides) + "\n")
    log.info("verify: python train.py %s", " ".join(overrides))
    train(cfg)
    return out


def verify(run_dir: Path, summary: dict, measured: dict, checks: list[Check], out: Path, top: int = 2) -> list[dict]:
    """Retrain with the advice of the top ``top`` causes that have any; one result per cause verified."""
    before = rundir.fold_metrics(run_dir)
    results = []
    for finding in [c for c in summary["causes"] if c.get("advice")][:top]:
        name, keys = target(finding, measured, checks)
        folder = retrain(run_dir, finding["advice"], out / "verify" / finding["id"])
        result = {"id": finding["id"], "advice": finding["advice"], "metric": name, "keys": keys,
                  "run": str(folder)} | compare(before, rundir.fold_metrics(folder), keys)
        log.info("verify %s: %s %.3f -> %.3f (%+.3f, p %.3f over %d folds)", finding["id"], name, result["mean_before"],
                 result["mean_after"], result["change"], result["p"], len(result["folds"]))
        results.append(result)
    return results


def add_to_report(run_dir: Path, out: Path, measured: dict, checks: list[Check], top: int) -> None:
    """Retrain with the top causes' advice; the results go into diagnosis.json (``verified``) and a report section
    after the ranked causes."""
    summary = rundir.read_json(out / "diagnosis.json")
    summary["verified"] = verify(run_dir, summary, measured, checks, out, top)
    rundir.write_json(out / "diagnosis.json", summary)
    section = markdown(summary["verified"]) or ["## Advice, verified", "", "No cause with advice to follow.", ""]
    report = (out / "report.md").read_text()
    at = report.index("How to read this:")
    rundir.write_text(out / "report.md", report[:at] + "\n".join(section) + "\n" + report[at:])


def markdown(results: list[dict]) -> list[str]:
    if not results:
        return []
    L = ["## Advice, verified", "", "Each cause's advice followed: the run trained again with its own overrides plus "
         "the advice, same folds and seed; the change in the metric the cause is about, per fold, with a one-sided "
         "paired sign-flip test over folds.", "",
         "| cause | advice | metric | before | after | change | folds better / worse | p |",
         "|---|---|---|---|---|---|---|---|"]
    for r in results:
        advice = " ".join(f"`{a}`" for a in r["advice"])
        L.append(f"| {r['id']} | {advice} | {r['metric']} | {r['mean_before']:.3f} | {r['mean_after']:.3f} | "
                 f"{r['change']:+.3f} | {r['folds_better']} / {r['folds_worse']} | {r['p']:.3f} |")
    return L + [""]
