"""The contract of a check: everything the diagnosis, the report, ``verify=true`` and the fault-injection
benchmark need to know about one, so that none of them names a check.

A check measures (on each fold with its model, ``per_fold``; over the pooled evidence, ``measure``),
judges (``judge``: findings whose score estimates the UA the cause costs), and writes its report section,
figures and files. Beyond that it declares:

- ``requires``: the checks whose measurement it reads (``Evidence.of``); they are measured first.
- ``causes``: the finding ids it can report as causes.
- ``verify_metric``: what following its advice should improve (a name and ``metrics.json`` keys).
- ``fold_columns``: its columns of the report's per-fold table.
- ``absent_by_construction``: whether its causes cannot be present on a clean single-corpus control
  (the benchmark counts a report of one there as a false alarm).
- ``bench_scores``: numbers the benchmark keeps per scenario (how well injected faults were found).

A new cause is a new module under ``ser/diagnose/checks/``, added to ``default_checks()``, and its test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: a check receives these, it does not build them
    from ser.diagnose.context import RunContext
    from ser.diagnose.evaluate import FoldView
    from ser.diagnose.evidence import Evidence, Finding, FoldResult

REPORT_ABOVE = 0.02  # a cause costing less than this UA (2 points) is not listed; set on the fault-injection benchmark
# A cause explains a consequence only when it costs at least this share of the consequence's UA. Set on the five
# fault-injection benches (python -m ser.diagnose.thresholds): 0.25 ranks 79 of their 87 injected faults first
# against 77 for 0.5, and is the value chosen on the other four for four of the five held out; weak features 0.05
# still do not explain underfitting a probe beats by 0.35.
EXPLAINS = 0.25


class Check:
    """One check. Subclasses set ``name`` (its key in ``diagnosis.json`` and ``FoldResult.extra``), ``title`` (its
    report section) and ``causes``, and override what they need."""

    name = ""
    title = ""
    causes: tuple[str, ...] = ()
    requires: tuple[type[Check], ...] = ()

    def per_fold(self, view: FoldView) -> object | None:
        """A measurement that needs the fold's model (kept in ``FoldResult.extra[name]``), or None."""
        return None

    def measure(self, ev: Evidence, run: RunContext) -> dict | None:
        """The check's numbers from the pooled evidence (and data, probes, retraining), or None."""
        return None

    def judge(self, m: dict, ev: Evidence) -> list[Finding]:
        """Causes (and risks) the numbers show, each with its score, evidence and advice."""
        return []

    def section(self, m: dict, ev: Evidence) -> list[str]:
        """The report section's Markdown lines (heading included)."""
        return []

    def figures(self, m: dict, ev: Evidence) -> dict:
        """File name -> matplotlib Figure."""
        return {}

    def jsonable(self, m: dict) -> dict:
        """What of the measurement goes into ``diagnosis.json`` (all of it, unless a check trims it)."""
        return m

    def write(self, m: dict, out) -> None:
        """Files of the check's own beside the report (e.g. a list of suspect labels)."""

    def fold_columns(self, fold: FoldResult, ev: Evidence) -> dict[str, tuple[str, float]]:
        """Its columns of the per-fold table: ``diagnosis.json`` key -> (heading, value for ``fold``)."""
        return {}

    def verify_metric(self, finding: dict, m: dict) -> tuple[str, list[str]]:
        """What following ``finding``'s advice should improve: a name and the ``metrics.json`` keys averaged per
        fold (``m``: this check's measurement as ``diagnosis.json`` holds it)."""
        return "UA", ["test/ua"]

    def absent_by_construction(self, class_counts: list[int]) -> bool:
        """True when its causes cannot be present in a clean, single-corpus run on a corpus with these class
        counts: reporting one there is a false alarm."""
        return False

    def bench_scores(self, m: dict) -> dict[str, float]:
        """Numbers the benchmark keeps for a scenario (``m`` as ``diagnosis.json`` holds it): a title -> value."""
        return {}


def measuring_order(checks: list[Check]) -> list[Check]:
    """``checks`` in an order that measures each after the checks it ``requires`` (otherwise as listed). A
    requirement missing from the list is an error naming both."""
    done, ordered = set(), []

    def visit(check: Check, path: tuple[str, ...]) -> None:
        if check.name in done:
            return
        if check.name in path:
            raise ValueError(f"checks {' -> '.join(path + (check.name,))} require each other")
        for need in check.requires:
            found = next((c for c in checks if isinstance(c, need)), None)
            if found is None:
                raise ValueError(f"check {check.name!r} requires {need.__name__}, which is not among the checks")
            visit(found, path + (check.name,))
        done.add(check.name)
        ordered.append(check)

    for check in checks:
        visit(check, ())
    return ordered
