"""The diagnosis as a list of checks. Each check is one module: it measures (on each fold with its
model, ``per_fold``, and over the pooled evidence, ``measure``), judges (``judge``: findings whose
score estimates the UA the cause costs), and writes its report section and figures. Ranking and the
report are loops over ``CHECKS``; a new cause is a new module here, added to the list, and a test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ser.diagnose.context import RunContext
    from ser.diagnose.evaluate import FoldView
    from ser.diagnose.evidence import Evidence, Finding

REPORT_ABOVE = 0.02  # a cause costing less than this UA (2 points) is not listed; set on the fault-injection benchmark


class Check:
    """One check. Subclasses set ``name`` (its key in ``diagnosis.json`` and ``FoldResult.extra``) and
    ``title`` (its report section) and override what they need."""

    name = ""
    title = ""

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


def default_checks() -> list[Check]:
    """Every check, in report order. ``features`` runs before ``fitting``, which reads its probe."""
    from ser.diagnose.checks.calibration import Calibration
    from ser.diagnose.checks.confusions import Confusions
    from ser.diagnose.checks.corpus_shift import CorpusShift
    from ser.diagnose.checks.data_size import DataSize
    from ser.diagnose.checks.duration import Duration
    from ser.diagnose.checks.features import Features
    from ser.diagnose.checks.fitting import Fitting
    from ser.diagnose.checks.imbalance import Imbalance
    from ser.diagnose.checks.label_noise import LabelNoise
    from ser.diagnose.checks.mismatch import Mismatch
    from ser.diagnose.checks.noise import NoiseSensitivity
    from ser.diagnose.checks.speakers import Speakers

    return [Confusions(), Imbalance(), LabelNoise(), Mismatch(), NoiseSensitivity(), Speakers(), Duration(),
            Calibration(), Features(), Fitting(), DataSize(), CorpusShift()]
