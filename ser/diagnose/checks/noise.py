"""Sensitivity to noise: UA with white, pink and babble noise added to the test audio at several SNRs
(babble mixed from the fold's training speakers, never the test speakers). A risk for noisy deployment
audio, not a cause of this test set's errors (the conditions check looks at the test set)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch

from ser.acoustics import draw_talkers, mix_at_snr, noise
from ser.data.store import materialize
from ser.diagnose import figures as F
from ser.diagnose.check import Check
from ser.diagnose.evaluate import predict
from ser.diagnose.evidence import Finding
from ser.stats import ua

DROP = 0.03  # UA lost at 10 dB SNR (the worst noise) before the risk is worth a line
KINDS = ("white", "pink", "babble")


def noisy(kind: str, snr_db: float, seed: int, babble_from: list):
    """A ``predict`` transform: each wave of a batch plus ``kind`` noise at ``snr_db`` over its valid samples
    (``ser.acoustics``), seeded by the wave's position in the loader; padding stays zero. ``babble_from``: the
    utterances (tensors or stored handles) babble talkers are drawn from."""
    count = [0]

    def transform(waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out = waves.clone()
        for row, n in enumerate(lengths.tolist()):
            rng = np.random.default_rng([seed, zlib.crc32(kind.encode()), count[0]])
            count[0] += 1
            talkers = ()
            if kind == "babble":  # drawn only for babble, so white and pink noise keep their draws
                talkers = [materialize(babble_from[int(k)]) for k in draw_talkers(rng, len(babble_from))]
            x = waves[row, :n].double().cpu().numpy()
            mixed = mix_at_snr(x, noise(kind, n, rng, talkers), snr_db)
            out[row, :n] = torch.from_numpy(mixed).to(waves.dtype).to(waves.device)
        return out

    return transform


def trained_noises(cfg) -> list[str]:
    """The noises a run's training heard: multi-condition copies (conditions.noises) and on-device
    augmentation (augment.colors)."""
    heard = []
    cond = cfg.get("conditions") or {}
    if int(cond.get("copies", 0) or 0) > 0 and float(cond.get("noise_p", 0) or 0) > 0:
        heard += list(cond.get("noises", []))
    augment = cfg.get("augment") or {}
    if float(augment.get("noise_p", 0.0) or 0.0) > 0:
        heard += list(augment.get("colors", []))
    return sorted(set(heard))


class NoiseSensitivity(Check):
    name, title = "noise", "Noise"

    def fold_columns(self, fold, ev):
        return {"ua_10db": ("UA at 10 dB", (fold.extra.get(self.name) or {}).get(10.0, math.nan))}

    def per_fold(self, view):
        out = {}
        corpus = view.dm.corpus
        speakers = {corpus.utterances[i].speaker for i in view.fold.test}
        # babble talkers: the fold's training speakers, never a test speaker (read only those drawn)
        babble_from = [corpus.stored(i) for i in view.fold.train if corpus.utterances[i].speaker not in speakers]
        for kind in KINDS:
            if kind == "babble" and not babble_from:
                continue
            for snr in view.options.snrs:
                transform = noisy(kind, float(snr), view.options.seed, babble_from)
                probs, labels, _ = predict(view.model, view.dm, view.fold.test, transform=transform)
                out[f"{kind}@{float(snr):g}"] = ua(labels, probs.argmax(1), len(view.model.class_names))
        return out

    def measure(self, ev, run):
        curves = ev.per_fold(self.name)
        if not curves or not curves[0]:
            return {"ua": {}}
        table = {}
        for key in curves[0]:
            kind, snr = key.split("@")
            table.setdefault(kind, {})[float(snr)] = ev.pooled_mean([c[key] for c in curves])
        table = {kind: dict(sorted(v.items(), reverse=True)) for kind, v in table.items()}
        return {"ua": table, "trained": trained_noises(run.cfg)}

    def judge(self, m, ev):
        at10 = {kind: v[10.0] for kind, v in m["ua"].items() if 10.0 in v}
        if not at10:
            return []
        worst = min(at10, key=at10.get)
        if ev.ua - at10[worst] <= DROP:
            return []
        s = ev.settings
        heard = m.get("trained") or []
        said = ", ".join(f"{kind} {v:.2f}" for kind, v in at10.items())
        trained = f"; training heard {'/'.join(heard)} noise" if heard else "; training heard no noise"
        if s.pretrained:  # degraded copies through the frozen upstream keep training fast
            advice = [s.more_copies] + (["conditions.snr_db=[-5,20]"] if s.condition_copies else [])
        elif s.noise_augmented:
            advice = ["augment.snr_db=[0,20]", "augment.noise_p=0.8"]
        else:
            advice = ["augment=noise", "augment.snr_db=[0,20]"]
        return [Finding("noise_sensitivity", "sensitivity to noise", ev.ua - at10[worst],
                        f"UA {ev.ua:.2f} clean; at 10 dB SNR {said} (noise added at test time){trained}",
                        advice, "if deployment audio is noisy", kind="risk")]

    def section(self, m, ev):
        if not m["ua"]:
            return []
        kinds = list(m["ua"])
        snrs = sorted({s for v in m["ua"].values() for s in v}, reverse=True)
        heard = m.get("trained") or []
        L = ["## Noise", "", "UA with noise added to the test audio at each SNR (seeded; babble is mixed from the fold's "
             "training speakers). Training heard " + (f"{', '.join(heard)} noise." if heard else "no noise."), "",
             "| SNR | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|",
             "| clean | " + " | ".join(f"{ev.ua:.3f}" for _ in kinds) + " |"]
        L += [f"| {s:g} dB | " + " | ".join(f"{m['ua'][k][s]:.3f}" if s in m["ua"][k] else "" for k in kinds) + " |"
              for s in snrs]
        return L + ["", "![noise](noise.png)", ""]

    def figures(self, m, ev):
        if not m["ua"]:
            return {}
        snrs = sorted({s for v in m["ua"].values() for s in v}, reverse=True)
        lines = {kind: [ev.ua, *(v.get(s, np.nan) for s in snrs)] for kind, v in m["ua"].items()}
        return {"noise.png": F.line(np.array(["clean"] + [f"{s:g} dB" for s in snrs]), lines,
                                    "UA with noise added at test time", "SNR", "UA")}
