"""Utterance length: UA per length quartile; the UA at stake is what the buckets below the median lose."""

from __future__ import annotations

import math

import numpy as np

from ser.diagnose import analysis as A
from ser.diagnose import figures as F
from ser.diagnose.check import REPORT_ABOVE, Check
from ser.diagnose.evidence import Finding

MIN_BUCKET = 10  # utterances a bucket needs before its UA means anything


class Duration(Check):
    name, title = "duration", "Duration"
    causes = ("utterance_length",)

    def measure(self, ev, run):
        rows = A.ua_by_duration(ev.durations, ev.labels, ev.preds, ev.C)
        used = [b for b in rows if b["n"] >= MIN_BUCKET and not math.isnan(b["ua"])]
        cost = 0.0
        if len(used) >= 2:
            median = float(np.median([b["ua"] for b in used]))
            cost = sum(b["n"] / ev.n * max(0.0, median - b["ua"]) for b in used)
        return {"buckets": rows, "cost": cost}

    def judge(self, m, ev):
        used = [b for b in m["buckets"] if b["n"] >= MIN_BUCKET and not math.isnan(b["ua"])]
        if m["cost"] < REPORT_ABOVE or len(used) < 2:
            return []
        low, high = min(used, key=lambda b: b["ua"]), max(used, key=lambda b: b["ua"])
        return [Finding("utterance_length", "utterance length", m["cost"],
                        f"UA {low['ua']:.2f} for {_span(low)} against {high['ua']:.2f} for {_span(high)}",
                        ["loader.max_train_s=null"], "or ser.predict window_s for long files")]

    def section(self, m, ev):
        L = ["## Duration", "", "| length | n | UA | WA |", "|---|---|---|---|"]
        L += [f"| {_bucket(b)} | {b['n']} | {b['ua']:.3f} | {b['wa']:.3f} |" for b in m["buckets"]]
        return L + ["", "![duration](duration.png)", ""]

    def figures(self, m, ev):
        return {"duration.png": F.bars({"UA": [b["ua"] for b in m["buckets"]]}, [_bucket(b) for b in m["buckets"]],
                                       "UA by utterance length", "UA", hline=ev.ua)}


def _bucket(b: dict) -> str:
    return f">= {b['low']:.1f} s" if math.isinf(b["high"]) else f"{b['low']:.1f}-{b['high']:.1f} s"


def _span(b: dict) -> str:
    if math.isinf(b["high"]):
        return f"{b['low']:.1f} s and longer"
    return f"under {b['high']:.1f} s" if b["low"] == 0 else f"{b['low']:.1f}-{b['high']:.1f} s"
