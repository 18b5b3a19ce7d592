"""Speaker variability: UA per test speaker, and how much of the spread is more than sampling noise.
A model that memorises its training speakers, or test audio recorded differently, spreads the test
speakers too: with those found, speaker variability is ranked as their consequence.

The UA at stake is what the speakers below the median lose against it (weighted by their share of the
test utterances), minus what the same number is when speakers are assigned to utterances at random
(a permutation null): a few dozen utterances per speaker spread their UA even when all are alike."""

from __future__ import annotations

import numpy as np

from ser import stats as S
from ser.diagnose import analysis as A
from ser.diagnose import figures as F
from ser.diagnose.check import REPORT_ABOVE, Check
from ser.diagnose.checks.embedding import grouping
from ser.diagnose.evidence import Finding

PERMUTATIONS = 200


def below_median(speakers: np.ndarray, labels: np.ndarray, preds: np.ndarray, C: int) -> float:
    """Sum over speakers of (their share of utterances) x (how far their UA falls below the median speaker's)."""
    names = np.unique(speakers)
    values = np.array([S.ua(labels[speakers == s], preds[speakers == s], C) for s in names])
    shares = np.array([(speakers == s).mean() for s in names])
    keep = ~np.isnan(values)
    median = np.median(values[keep])
    return float(np.sum(shares[keep] * np.maximum(0.0, median - values[keep])))


class Speakers(Check):
    name, title = "speakers", "Speakers"
    causes = ("speaker_variability",)

    def measure(self, ev, run):
        m = {"ua": A.ua_by_group(ev.speakers, ev.labels, ev.preds, ev.C),
             "gender_ua": A.ua_by_group(ev.genders, ev.labels, ev.preds, ev.C) if any(ev.genders) else {}}
        speakers = np.array(ev.speakers)
        if len(m["ua"]) < 2:
            return m
        observed = below_median(speakers, ev.labels, ev.preds, ev.C)
        rng = np.random.default_rng(run.options.seed)
        null = np.array([below_median(rng.permutation(speakers), ev.labels, ev.preds, ev.C) for _ in range(PERMUTATIONS)])
        m |= {"below_median": observed, "null_mean": float(null.mean()), "excess": observed - float(null.mean()),
              "interval": (observed - float(np.quantile(null, 0.95)), observed - float(np.quantile(null, 0.05)))}
        return m

    def judge(self, m, ev):
        if m.get("excess", 0) < REPORT_ABOVE:
            return []
        spk = {s: v for s, v in m["ua"].items() if not np.isnan(v["ua"])}
        low = min(spk, key=lambda s: spk[s]["ua"])
        values = [v["ua"] for v in spk.values()]
        return [Finding("speaker_variability", "speaker variability", m["excess"],
                        f"UA per test speaker {min(values):.2f}-{max(values):.2f} (lowest: {low}); the speakers below the "
                        f"median lose {m['below_median']:.3f} UA against it, {m['null_mean']:.3f} of which random "
                        "speaker assignment also shows" + grouping(ev, "speaker"), [ev.settings.variety],
                        "more training speakers; features.normalize=speaker (transductive: report it separately)",
                        interval=m["interval"], explained_by=("overfitting", "mismatch"))]

    def section(self, m, ev):
        values = [v["ua"] for v in m["ua"].values()]
        L = ["## Speakers", "", f"UA per test speaker: min {min(values):.3f}, max {max(values):.3f}"
             + (f", std {np.std(values, ddof=1):.3f}" if len(values) > 1 else "") + "."]
        if "excess" in m:
            L += ["", f"Speakers below the median lose {m['below_median']:.3f} UA against it; with speakers assigned "
                  f"to utterances at random, {m['null_mean']:.3f}: the excess, {m['excess']:+.3f}, is what speaker "
                  "differences cost."]
        L += ["", "| speaker | n | UA | WA |", "|---|---|---|---|"]
        L += [f"| {s} | {v['n']} | {v['ua']:.3f} | {v['wa']:.3f} |" for s, v in m["ua"].items()]
        if m["gender_ua"]:
            L += ["", "| gender | n | UA | WA |", "|---|---|---|---|"]
            L += [f"| {g or 'unknown'} | {v['n']} | {v['ua']:.3f} | {v['wa']:.3f} |" for g, v in m["gender_ua"].items()]
        else:
            L += ["", "The corpus gives no speaker gender."]
        return L + ["", "![speakers](speakers.png)", ""]

    def figures(self, m, ev):
        return {"speakers.png": F.bars({"UA": [v["ua"] for v in m["ua"].values()]}, list(m["ua"]), "UA per test speaker",
                                       "UA", hline=ev.ua)}
