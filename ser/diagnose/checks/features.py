"""Features or architecture? Linear probes on utterance features over the same folds, and occlusion.

A probe (logistic regression on utterance functionals: ``ser.baselines``' sets, trained on each fold's
training speakers, tested on its test speakers) shows what a feature set holds. The run's own
frontend against a hand-crafted reference (log-mel functionals, openSMILE eGeMAPS where installed):
when the reference holds clearly more, the features are weak (that difference is the UA at stake).
The own probe against the model: when the probe beats the model, the features hold more than the
model uses (the fitting check says whether it under- or overfits). Occlusion: the UA lost when a
group of the model's input rows is set to its training mean.
"""

from __future__ import annotations

import numpy as np

from ser import stats as S
from ser.diagnose import figures as F
from ser.diagnose.check import REPORT_ABOVE, Check
from ser.diagnose.evaluate import predict
from ser.diagnose.evidence import Finding

HANDCRAFTED = ("logmel", "egemaps")  # references every corpus can be judged by; GE2E is shown, not counted
UNUSED = 0.005  # an occluded group changing UA by less than this is not used


class Features(Check):
    name, title = "features", "Features"
    causes = ("weak_features",)

    def per_fold(self, view):
        if not view.options.occlude:
            return None
        out = {}
        for name, rows in view.model.frontend.row_groups().items():
            probs, labels, _ = predict(view.model, view.dm, view.fold.test, edit=_occlude(rows))
            out[name] = S.ua(labels, probs.argmax(1), len(view.model.class_names))
        return out

    def measure(self, ev, run):
        occl = ev.per_fold(self.name)
        m = {"occlusion": {g: ev.pooled_mean([o[g] for o in occl]) for g in occl[0]} if occl and occl[0] else {}}
        if not run.options.probes:
            return m
        order = {f.fold: f.index for f in ev.folds}
        own = run.probe("own", order)
        sets = run.feature_sets()
        probes = {"own": own.argmax(1)}
        for name in sets:
            if name != "own" and not (name == "ge2e" and ev.settings.pretrained) and not _same_as_own(name, run.cfg):
                probes[name] = run.probe(name, order).argmax(1)
        ua = {k: S.ua(ev.labels, p, ev.C) for k, p in probes.items()}
        m |= {"probe_ua": ua, "described": {k: sets[k] for k in probes}, "model_ua": ev.ua,
              "capacity": ua["own"] - ev.ua}
        m["capacity_interval"] = _paired(ev, probes["own"], ev.preds, run)
        refs = [k for k in probes if k in HANDCRAFTED]
        if refs and not any(f.cross_corpus for f in ev.folds):  # across corpora, a probe measures transfer (Corpus shift)
            best = max(refs, key=lambda k: ua[k])
            m |= {"reference": best, "weak": ua[best] - ua["own"],
                  "weak_interval": _paired(ev, probes[best], probes["own"], run)}
        return m

    def judge(self, m, ev):
        out = []
        if m.get("weak", 0) >= REPORT_ABOVE:
            ref = m["reference"]
            out.append(Finding("weak_features", "weak features", m["weak"],
                               f"a linear probe on {m['described'][ref]} reaches UA {m['probe_ua'][ref]:.2f} on these "
                               f"folds, on the run's own features {m['probe_ua']['own']:.2f} (the model: {ev.ua:.2f})",
                               _advice(ev), "or features=logmel, or a pretrained upstream (experiment=pretrained)"
                               if ev.settings.spectral_frontend and not ev.settings.pretrained else "",
                               interval=m["weak_interval"],
                               # Noisy labels confound the comparison: a probe on wide features (an upstream's
                               # statistics) fits the wrong labels more than one on 88 eGeMAPS functionals. Test
                               # audio recorded otherwise makes it a comparison of robustness, not of content,
                               # however little the mismatch costs the model (a CNN near chance on quiet audio).
                               explained_by=("label_noise", "mismatch", "corpus_shift"),
                               measured_through=("mismatch",)))
        occl = m["occlusion"]
        drops = {g: ev.ua - v for g, v in occl.items()}
        # Slices of one spectrogram or of mixed hidden units are not separable options; rows and layers are.
        unused = [g for g in drops if not g.startswith(("mel ", "MFCC ", "units ")) and drops[g] < UNUSED]
        if unused:
            layers = [g.removeprefix("layer ") for g in unused if g.startswith("layer ")]
            top = max(drops, key=drops.get)
            out.append(Finding("redundant_features", "redundant features", 0.0,
                               f"occluding {', '.join(unused)} changes UA by less than {UNUSED}; the model leans on {top} "
                               f"(UA -{drops[top]:.2f} without it)", [],
                               f"choose features.layers without layer {', '.join(layers)}" if layers else
                               "drop the unused rows (features.prosody, features.spectral, features.deltas)", kind="risk"))
        return out

    def section(self, m, ev):
        L = ["## Features", ""]
        if "probe_ua" in m:
            L += ["A linear probe (logistic regression on utterance features, trained on each fold's training speakers) "
                  "against the model, on the same test utterances:", "", "| features | probe UA |", "|---|---|"]
            L += [f"| {m['described'][k]}{' (the run' + chr(39) + 's)' if k == 'own' else ''} | {v:.3f} |"
                  for k, v in m["probe_ua"].items()]
            L += [f"| **the model** | **{ev.ua:.3f}** |", ""]
            if m.get("weak", 0) >= REPORT_ABOVE:
                L.append(f"The features hold little: {m['described'][m['reference']]} reach {m['weak']:+.3f} more UA "
                         "under the same probe. Try other features before another architecture.")
            elif m["capacity"] >= REPORT_ABOVE:
                L.append(f"The features hold more than the model uses: the probe beats it by {m['capacity']:.3f} "
                         "(architecture or training; see Fitting).")
            else:
                L.append("The model uses what its features hold (the probe does not beat it by more than "
                         f"{REPORT_ABOVE}), and no reference holds clearly more.")
            L.append("")
        elif "skipped" in m:
            L += [f"Probes not run: {m['skipped']}.", ""]
        if m["occlusion"]:
            L += ["UA when each group of feature rows is occluded (set to its training mean) before the encoder:", "",
                  "| group | UA | drop |", "|---|---|---|"]
            L += [f"| {g} | {v:.3f} | {ev.ua - v:+.3f} |" for g, v in sorted(m["occlusion"].items(), key=lambda kv: kv[1])]
            L += ["", "![occlusion](occlusion.png)", ""]
        return L

    def figures(self, m, ev):
        if not m["occlusion"]:
            return {}
        return {"occlusion.png": F.horizontal_bars({g: ev.ua - v for g, v in m["occlusion"].items()},
                                                   "UA lost when a feature group is occluded", "UA drop")}


def _occlude(rows):
    """An ``edit`` of the normalised features (B, F, T'): ``rows`` set to 0, their training mean."""
    def edit(feats, frames):
        hidden = feats.clone()
        hidden[:, rows] = 0.0
        return hidden

    return edit


def _paired(ev, a: np.ndarray, b: np.ndarray, run) -> tuple[float, float]:
    """90 % bootstrap interval of UA(a) - UA(b) over the pooled test utterances."""
    return S.bootstrap_interval(lambda ix: S.ua(ev.labels[ix], a[ix], ev.C) - S.ua(ev.labels[ix], b[ix], ev.C), ev.n,
                                run.options.bootstrap, run.options.seed)


def _same_as_own(name: str, cfg) -> bool:
    """The reference set is the run's own frontend (default log-mel with nothing added)."""
    f = cfg.features
    return name == "logmel" and str(f.get("_target_", "")).endswith(".LogMel") and f.get("n_mels") == 64 \
        and not f.get("deltas") and not f.get("prosody") and not f.get("spectral")


def _advice(ev) -> list[str]:
    """One coherent change (advice is followed as a whole, verify=true): the full log-mel with prosody for a
    thin spectral frontend; a pretrained upstream otherwise. The alternatives are in the finding's text."""
    s = ev.settings
    if s.spectral_frontend:
        return ["features=logmel_prosody"]
    return [] if s.pretrained else ["experiment=pretrained"]
