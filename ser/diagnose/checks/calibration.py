"""Calibration: the reliability diagram and expected calibration error, of the probabilities as the model gives
them (temperature-scaled when training fitted a temperature, ``ser.calibrate``) and before scaling.
Miscalibration costs no UA, but makes the probabilities misleading; it is listed as a risk."""

from __future__ import annotations

import numpy as np

from ser import stats as S
from ser.diagnose import figures as F
from ser.diagnose.check import Check
from ser.diagnose.evidence import Finding

ECE = 0.08  # above this, probabilities are off by more than a reader would shrug at


class Calibration(Check):
    name, title = "calibration", "Calibration"

    def per_fold(self, view):
        return {"temperature": float(getattr(view.model, "temperature", 1.0))}

    def measure(self, ev, run):
        m = S.calibration(ev.probs, ev.labels)
        temps = [float((t or {}).get("temperature", 1.0)) for t in ev.per_fold(self.name)]
        m["temperatures"] = temps
        if any(abs(t - 1.0) > 1e-6 for t in temps):
            # the logits' softmax before scaling: softmax(T * log p) undoes softmax(logits / T)
            raw = []
            for fold, t in zip(ev.folds, temps):
                z = t * np.log(np.clip(fold.probs, 1e-30, None))
                z = np.exp(z - z.max(1, keepdims=True))
                raw.append(z / z.sum(1, keepdims=True))
            before = S.calibration(np.concatenate(raw), ev.labels)
            m["before"] = {"ece": before["ece"], "mean_confidence": before["mean_confidence"]}
        return m

    def judge(self, m, ev):
        if m["ece"] <= ECE:
            return []
        gap = m["mean_confidence"] - m["accuracy"]
        kind = "over-confident" if gap > 0.03 else "under-confident" if gap < -0.03 else "wrong in both directions by bin"
        return [Finding("miscalibration", "miscalibrated probabilities", m["ece"],
                        f"ECE {m['ece']:.3f}: mean confidence {m['mean_confidence']:.2f} against accuracy "
                        f"{m['accuracy']:.2f} ({kind})",
                        self.advice(m, ev, gap), "before trusting probabilities", kind="risk")]

    @staticmethod
    def advice(m, ev, gap) -> list[str]:
        if "before" not in m:  # not scaled: split.val=0 runs fit a temperature on inner folds
            return ["calibrate.inner_folds=2"]
        return [] if ev.settings.label_smoothing or gap < 0 else ["loss.label_smoothing=0.1"]

    def section(self, m, ev):
        scaled = ""
        if "before" in m:
            t = np.array(m["temperatures"])
            scaled = (f" Temperature scaling (T {t.min():.2f} to {t.max():.2f} over folds, fitted on held-out training "
                      f"speakers) took ECE from {m['before']['ece']:.3f} (mean confidence "
                      f"{m['before']['mean_confidence']:.3f}) to {m['ece']:.3f}.")
        else:
            scaled = " The probabilities are not temperature-scaled (calibrate.temperature, calibrate.inner_folds)."
        L = ["## Calibration", "", f"Expected calibration error (10 equal-width bins): **ECE {m['ece']:.3f}**; mean "
             f"confidence {m['mean_confidence']:.3f} against accuracy {m['accuracy']:.3f}.{scaled}", "",
             "| confidence | n | accuracy | mean confidence |", "|---|---|---|---|"]
        L += [f"| {b['low']:.1f}-{b['high']:.1f} | {b['n']} | {b['accuracy']:.3f} | {b['confidence']:.3f} |"
              for b in m["bins"]]
        return L + ["", "![calibration](calibration.png)", ""]

    def figures(self, m, ev):
        return {"calibration.png": F.reliability(m["bins"], m["ece"])}
