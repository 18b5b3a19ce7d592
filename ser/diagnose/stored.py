"""A diagnosis judged again from its stored measurements (``diagnosis.json``), nothing retrained: how the
thresholds are set on finished benches (``ser.diagnose.thresholds``) and how a finished bench is scored under
rules changed since it ran (``python -m ser.diagnose.bench rejudge=true``)."""

from __future__ import annotations

import math

import numpy as np

from ser.diagnose.evidence import RunSettings
from ser.diagnose.report import rank


class StoredEvidence:
    """What the checks' ``judge`` reads, rebuilt from a scenario's ``diagnosis.json``."""

    def __init__(self, diagnosis: dict):
        self.class_names, self.ua = diagnosis["class_names"], diagnosis["ua"]
        self.settings = RunSettings(**diagnosis["settings"])
        self.measured = {name: m or {} for name, m in diagnosis["checks"].items()}
        for bucket in self.measured.get("duration", {}).get("buckets", []):  # JSON keeps inf and NaN as null
            bucket.update({k: (math.inf if k == "high" else math.nan) for k, v in bucket.items() if v is None})
        support = np.array(self.measured.get("confusions", {}).get("support", [1] * self.C))
        self.present = support > 0

    @property
    def C(self) -> int:
        return len(self.class_names)

    def of(self, check: type) -> dict:
        return self.measured.get(check.name) or {}


def rejudged(diagnosis: dict, checks) -> dict:
    """The diagnosis's causes judged again from its stored measurements (``diagnosis.json`` shape, causes only)."""
    ev = StoredEvidence(diagnosis)
    judged = [(f, c.name) for c in checks for f in c.judge(ev.measured.get(c.name) or {}, ev)]
    by = {id(f): name for f, name in judged}
    return {"causes": [f.as_dict() | {"check": by[id(f)]} for f in rank([f for f, _ in judged])[0]],
            "checks": diagnosis["checks"]}
