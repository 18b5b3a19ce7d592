"""Sensitivity to noise: UA with white noise added to the test audio at several SNRs. A risk for noisy
deployment audio, not a cause of this test set's errors (the conditions check looks at the test set)."""

from __future__ import annotations

import numpy as np
import torch

from ser.diagnose import figures as F
from ser.diagnose.analysis import ua
from ser.diagnose.checks import Check
from ser.diagnose.evaluate import predict
from ser.diagnose.evidence import Finding
from ser.features.augment import add_noise

DROP = 0.03  # UA lost at 10 dB SNR before the risk is worth a line


class NoiseSensitivity(Check):
    name, title = "noise", "Noise"

    def per_fold(self, view):
        out = {}
        for snr in view.options.snrs:
            def noisy(waves, lengths, snr=float(snr)):
                return add_noise(waves, lengths, torch.full((len(waves),), snr, device=waves.device), "white")

            probs, labels, _ = predict(view.model, view.dm, view.fold.test, transform=noisy)
            out[float(snr)] = ua(labels, probs.argmax(1), len(view.model.class_names))
        return out

    def measure(self, ev, run):
        curves = ev.per_fold(self.name)
        if not curves or not curves[0]:
            return {"ua": {}}
        return {"ua": {s: ev.pooled_mean([c[s] for c in curves]) for s in sorted(curves[0], reverse=True)}}

    def judge(self, m, ev):
        at10 = m["ua"].get(10.0)
        if at10 is None or ev.ua - at10 <= DROP:
            return []
        s = ev.settings
        return [Finding("noise_sensitivity", "sensitivity to noise", ev.ua - at10,
                        f"UA {ev.ua:.2f} clean, {at10:.2f} at 10 dB SNR" +
                        (f", {m['ua'][0.0]:.2f} at 0 dB" if 0.0 in m["ua"] else "") + " (white noise added at test time)",
                        ["augment.snr_db=[0,20]", "augment.noise_p=0.8"] if s.noise_augmented else
                        ["augment=noise", "augment.snr_db=[0,20]"], "if deployment audio is noisy", kind="risk")]

    def section(self, m, ev):
        if not m["ua"]:
            return []
        L = ["## Noise", "", "UA with white noise added to the test audio at each SNR (seeded; the model never saw it "
             "unless trained with augment=noise):", "", "| SNR | UA |", "|---|---|", f"| clean | {ev.ua:.3f} |"]
        L += [f"| {s:g} dB | {v:.3f} |" for s, v in m["ua"].items()]
        return L + ["", "![noise](noise.png)", ""]

    def figures(self, m, ev):
        if not m["ua"]:
            return {}
        return {"noise.png": F.line(np.array(["clean"] + [f"{s:g} dB" for s in m["ua"]]),
                                    {"UA": [ev.ua, *m["ua"].values()]}, "UA with white noise at test time", "SNR", "UA")}
