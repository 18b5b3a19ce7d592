"""Calibration: the reliability diagram and expected calibration error. Miscalibration costs no UA, but
makes the probabilities misleading; it is listed as a risk."""

from __future__ import annotations

from ser.diagnose import analysis as A
from ser.diagnose import figures as F
from ser.diagnose.checks import Check
from ser.diagnose.evidence import Finding

ECE = 0.08  # above this, probabilities are off by more than a reader would shrug at


class Calibration(Check):
    name, title = "calibration", "Calibration"

    def measure(self, ev, run):
        return A.calibration(ev.probs, ev.labels)

    def judge(self, m, ev):
        if m["ece"] <= ECE:
            return []
        gap = m["mean_confidence"] - m["accuracy"]
        kind = "over-confident" if gap > 0.03 else "under-confident" if gap < -0.03 else "wrong in both directions by bin"
        return [Finding("miscalibration", "miscalibrated probabilities", m["ece"],
                        f"ECE {m['ece']:.3f}: mean confidence {m['mean_confidence']:.2f} against accuracy "
                        f"{m['accuracy']:.2f} ({kind})",
                        [] if ev.settings.label_smoothing or gap < 0 else ["loss.label_smoothing=0.1"],
                        "temperature-scale the logits on validation data before trusting probabilities", kind="risk")]

    def section(self, m, ev):
        L = ["## Calibration", "", f"Expected calibration error (10 equal-width bins): **ECE {m['ece']:.3f}**; mean "
             f"confidence {m['mean_confidence']:.3f} against accuracy {m['accuracy']:.3f}.", "",
             "| confidence | n | accuracy | mean confidence |", "|---|---|---|---|"]
        L += [f"| {b['low']:.1f}-{b['high']:.1f} | {b['n']} | {b['accuracy']:.3f} | {b['confidence']:.3f} |"
              for b in m["bins"]]
        return L + ["", "![calibration](calibration.png)", ""]

    def figures(self, m, ev):
        return {"calibration.png": F.reliability(m["bins"], m["ece"])}
