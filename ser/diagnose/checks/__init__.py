"""The diagnosis's checks, one module each (``ser.diagnose.check.Check`` is their contract).
``default_checks()`` lists them in report order; the diagnosis measures each after the checks it requires."""

from __future__ import annotations

from ser.diagnose.check import Check
from ser.diagnose.checks.calibration import Calibration
from ser.diagnose.checks.confusions import Confusions
from ser.diagnose.checks.corpus_shift import CorpusShift
from ser.diagnose.checks.data_size import DataSize
from ser.diagnose.checks.duration import Duration
from ser.diagnose.checks.embedding import Embedding
from ser.diagnose.checks.features import Features
from ser.diagnose.checks.fitting import Fitting
from ser.diagnose.checks.imbalance import Imbalance
from ser.diagnose.checks.label_noise import LabelNoise
from ser.diagnose.checks.mismatch import Mismatch
from ser.diagnose.checks.noise import NoiseSensitivity
from ser.diagnose.checks.speakers import Speakers


def default_checks() -> list[Check]:
    """Every check, in report order."""
    return [Confusions(), Imbalance(), LabelNoise(), Mismatch(), NoiseSensitivity(), Speakers(), Embedding(), Duration(),
            Calibration(), Features(), Fitting(), DataSize(), CorpusShift()]
