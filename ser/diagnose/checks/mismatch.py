"""Training/test condition mismatch: is the test audio recorded differently from the training audio?

Per utterance, from the waveform alone: a noise-floor SNR estimate (the 90th minus the 10th percentile
of 25 ms frame levels, capped at 60 dB), the energy above 4.5 kHz and below 300 Hz (band limits and
broadband noise move them), the level (dBFS over active frames), the share of clipped samples, the
amplitude resolution (log2 of the distinct sample values) and a coarse long-term spectrum. Training
and test audio are compared by medians and by AUC (how well each descriptor alone tells a test
utterance from a training one), pooled over folds, so that one odd speaker does not pass for a
recording condition. Where they differ materially, the UA at stake is the
gap between the model on clean held-out speakers of the training data (validation, else the training
speakers themselves) and on the test speakers. This measures the test set; the noise check measures
sensitivity (what noise *would* do).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ser import stats as S
from ser.diagnose import figures as F
from ser.diagnose.check import REPORT_ABOVE, Check
from ser.diagnose.evidence import Finding

# A difference that matters (set on the fault-injection benchmark): the test audio noisier by 6 dB,
# 6 dB more or less energy above 4.5 kHz or below 300 Hz (a band limit, or broadband noise), 10 dB
# quieter or louder (only for frontends that keep the level), 0.5 % more clipped samples, 3 bits less
# amplitude resolution (distinct sample values: a quiet, coarsely quantised recording).
DESCRIPTORS = {
    "snr_db": ("noise-floor SNR estimate", "dB", lambda train, test: train - test >= 6),
    "high_db": ("energy above 4.5 kHz", "dB", lambda train, test: abs(train - test) >= 6),
    "low_db": ("energy below 300 Hz", "dB", lambda train, test: abs(train - test) >= 6),
    "level_db": ("level", "dBFS", lambda train, test: abs(train - test) >= 10),
    "clipped": ("clipped samples", "share", lambda train, test: test - train >= 0.005),
    "bits": ("amplitude resolution", "bits", lambda train, test: train - test >= 3),
}
SEPARATED = 0.8  # and the descriptor alone tells test from training utterances with AUC at least this (or 1 - it)
BANDS = np.geomspace(100, 8000, 25)  # edges of the coarse long-term spectrum kept per utterance (1/4 octave)
# A test spectrum cut below this is a narrowband channel: trained for with telephone-band copies. The bands place
# the edge of a 3.4 kHz telephone cut at 4.6 kHz (the first band wholly 6 dB down).
NARROWBAND_HZ = 5000


@torch.no_grad()
def conditions(wave: torch.Tensor, sample_rate: int) -> dict:
    """The recording descriptors of one wave (T,) (see the module docstring), and its long-term spectrum
    over the active frames in ``BANDS`` (dB relative to the total)."""
    win, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    x = wave.double()
    if len(x) < win:
        x = torch.nn.functional.pad(x, (0, win - len(x)))
    frames = x.unfold(0, win, hop)  # (T', win)
    power = frames.pow(2).mean(1)
    db = 10 * torch.log10(power + 1e-12)
    active = db > db.max() - 30
    spec = torch.fft.rfft(frames[active] * torch.hann_window(win, dtype=x.dtype), dim=1).abs().pow(2).mean(0)
    freqs = torch.fft.rfftfreq(win, 1 / sample_rate, dtype=x.dtype)
    total = spec.sum().clamp_min(1e-20)

    def share_db(mask) -> float:
        return float(10 * torch.log10(spec[mask].sum() / total + 1e-12))

    low, high = torch.quantile(db, torch.tensor([0.1, 0.9], dtype=x.dtype))
    return {"snr_db": float((high - low).clamp(0, 60)),
            "high_db": share_db(freqs >= 4500),
            "low_db": share_db(freqs < 300),
            "level_db": float(10 * torch.log10(power[active].mean() + 1e-12)),
            "clipped": float((wave.abs() >= 0.99).double().mean()),
            "bits": float(np.log2(max(len(torch.unique(wave)), 1))),  # distinct sample values: coarse quantisation shows
            "spectrum": [share_db((freqs >= a) & (freqs < b)) for a, b in zip(BANDS[:-1], BANDS[1:])]}


class Mismatch(Check):
    name, title = "mismatch", "Recording conditions"
    causes = ("mismatch",)

    def __init__(self):
        self._clean: dict[int, dict] = {}  # training-side descriptors, the same in every fold

    def _describe(self, dm, i: int, test: bool) -> dict:
        if test and i in dm.test_waves:  # injected test audio: as this fold serves it
            return conditions(dm.test_waves[i], dm.corpus.sample_rate)
        if i not in self._clean:
            self._clean[i] = conditions(dm.corpus.audio(i), dm.corpus.sample_rate)
        return self._clean[i]

    def verify_metric(self, finding, m):
        return "UA on the test audio as it was (its noise or channel)", ["test/ua"]

    def absent_by_construction(self, class_counts):
        return True  # a clean run's test speakers were recorded as its training speakers were

    def per_fold(self, view):
        dm, fold = view.dm, view.fold
        if view.result.cross_corpus:
            return {"cross_corpus": True}
        part = "val" if fold.val else "train"
        preds, labels = view.predictions_on(part)
        return {"train": [self._describe(dm, i, False) for i in fold.train],
                "test": [self._describe(dm, i, True) for i in fold.test],
                "reference": "validation" if fold.val else "training", "reference_ua": view.ua_on(part),
                "reference_preds": preds.tolist(), "reference_labels": labels.tolist(), "cross_corpus": False}

    def measure(self, ev, run):
        parts = [(f, p) for f, p in zip(ev.folds, ev.per_fold(self.name)) if p and not p["cross_corpus"]]
        if not parts:
            return {"skipped": "every fold is tested on another corpus (see Corpus shift)"}
        rows = {}
        for key in DESCRIPTORS:
            train = np.array([d[key] for _, p in parts for d in p["train"]])
            test = np.array([d[key] for _, p in parts for d in p["test"]])
            mt, ms = float(np.median(train)), float(np.median(test))
            auc = S.auc(test, train)
            counted = not (key == "level_db" and ev.settings.level_invariant)  # the frontend removes the level
            rows[key] = {"train": mt, "test": ms, "auc": auc, "counted": counted,
                         "differs": counted and bool(DESCRIPTORS[key][2](mt, ms)) and abs(auc - 0.5) >= SEPARATED - 0.5}
        spectrum = (np.median([d["spectrum"] for _, p in parts for d in p["test"]], axis=0)
                    - np.median([d["spectrum"] for _, p in parts for d in p["train"]], axis=0))
        # UA at stake: the model on clean held-out speakers of the training data against the test speakers.
        labels = np.concatenate([f.labels for f, _ in parts])
        preds = np.concatenate([f.probs.argmax(1) for f, _ in parts])
        weights = np.array([len(f.labels) for f, _ in parts], float)
        reference = float(np.average([p["reference_ua"] for _, p in parts], weights=weights))
        test_ua = S.ua(labels, preds, ev.C)
        m = {"descriptors": rows, "spectrum_db": spectrum.tolist(), "band_edges_hz": BANDS.tolist(),
             "cutoff_hz": _edge(spectrum, upper=True), "low_cut_hz": _edge(spectrum, upper=False),
             "reference": parts[0][1]["reference"], "reference_ua": reference, "test_ua": test_ua,
             "gap": reference - test_ua, "differs": [k for k, r in rows.items() if r["differs"]]}
        if m["differs"]:
            m["interval"] = gap_interval(parts, labels, preds, reference, ev.C, run.options)
        return m

    def judge(self, m, ev):
        if "skipped" in m or not m["differs"] or m["gap"] < REPORT_ABOVE:
            return []
        d = m["descriptors"]
        what = [f"{DESCRIPTORS[k][0]} {_value(k, d[k]['test'])} against {_value(k, d[k]['train'])} in training"
                for k in m["differs"]]
        if m["cutoff_hz"]:
            what.append(f"its spectrum falls 6 dB or more below training's above {m['cutoff_hz'] / 1000:.1f} kHz")
        advice, notes, s = [], [], ev.settings
        noisy = "snr_db" in m["differs"] or ("high_db" in m["differs"] and d["high_db"]["test"] > d["high_db"]["train"])
        coarse = "bits" in m["differs"]  # coarse quantisation: noise at the signal's level, which the SNR estimate misses
        low = max(0, int(5 * math.floor((d["snr_db"]["test"] - 5) / 5)))
        if s.pretrained and (noisy or coarse or m["cutoff_hz"]):
            # degraded copies through the frozen upstream, cached: the fast way to train for these conditions
            advice += [s.more_copies]
            advice += [f"conditions.snr_db=[{low},{max(low + 10, 20)}]"] if noisy else []
            advice += ["conditions.telephone_p=0.5"] if m["cutoff_hz"] and m["cutoff_hz"] <= NARROWBAND_HZ else []
        else:
            if noisy or coarse:
                advice += [] if s.noise_augmented else ["augment=noise"]
                advice += [f"augment.snr_db=[{low},{max(low + 10, 20)}]"] if noisy else []
            if m["cutoff_hz"] and m["cutoff_hz"] <= NARROWBAND_HZ:
                # band-limited copies of the training audio: a band limit alone (f_max) left the 10-epoch LSTM at
                # chance on telephone-band EmoDB (verify): the level and shape of what is left differ too
                advice += [s.more_copies, "conditions.telephone_p=0.5"]
        if m["cutoff_hz"] and s.spectral_frontend:
            advice += [f"features.f_max={int(100 * (m['cutoff_hz'] // 100))}"]
        if m["cutoff_hz"] or m["low_cut_hz"]:
            notes.append("train on audio through the same band limit")
        if "level_db" in m["differs"]:
            if s.pretrained:  # through the cache: copies at other levels (augment.gain_db would run the upstream every step)
                advice += ([] if s.more_copies in advice else [s.more_copies]) + ["conditions.gain_db=20"]
            else:
                advice += ["features.normalize=utterance", "augment.gain_db=20"]
        if "clipped" in m["differs"]:
            notes.append("lower the recording gain of the test audio")
        if "bits" in m["differs"]:
            notes.append("record the test audio at a higher level or bit depth")
        where = "clean validation speakers" if m["reference"] == "validation" else "the training speakers themselves"
        return [Finding("mismatch", "test conditions differ from training", m["gap"],
                        f"test audio: {'; '.join(what)}; UA {m['test_ua']:.2f} on the test speakers against "
                        f"{m['reference_ua']:.2f} on {where}", advice, "; ".join(notes), interval=m.get("interval"))]

    def section(self, m, ev):
        L = ["## Recording conditions", ""]
        if "skipped" in m:
            return L + [f"Not compared: {m['skipped']}.", ""]
        L += ["Training against test audio, per utterance from the waveform (medians over every fold; AUC: how well "
              "the descriptor alone tells a test utterance from a training one, 0.5 = alike). A difference counts when "
              f"it is large and the AUC is at least {SEPARATED} (or at most {1 - SEPARATED:.1f}).", "",
              "| descriptor | training | test | AUC | differs |", "|---|---|---|---|---|"]
        for k, r in m["descriptors"].items():
            verdict = "**yes**" if r["differs"] else "no" if r["counted"] else "not counted (the frontend removes it)"
            L.append(f"| {DESCRIPTORS[k][0]} | {_value(k, r['train'])} | {_value(k, r['test'])} | {r['auc']:.2f} | "
                     f"{verdict} |")
        if m["cutoff_hz"] or m["low_cut_hz"]:
            L += ["", "The test audio's long-term spectrum lies 6 dB or more below training's "
                  + " and ".join(x for x in (m["low_cut_hz"] and f"below {m['low_cut_hz']:.0f} Hz",
                                             m["cutoff_hz"] and f"above {m['cutoff_hz'] / 1000:.1f} kHz") if x)
                  + ": a band limit."]
        where = "validation speakers" if m["reference"] == "validation" else "training speakers (eval mode; optimistic)"
        L += ["", f"UA on the {where}: {m['reference_ua']:.3f}; on the test speakers: {m['test_ua']:.3f}.", "",
              "![conditions](conditions.png)", ""]
        return L

    def figures(self, m, ev):
        if "skipped" in m:
            return {}
        edges = np.array(m["band_edges_hz"])
        return {"conditions.png": F.curve(np.sqrt(edges[:-1] * edges[1:]), m["spectrum_db"],
                                          "long-term spectrum, test against training", "frequency (Hz)",
                                          "test minus training (dB)", logx=True, zero_line=True)}


def gap_interval(parts, labels, preds, reference: float, C: int, options) -> tuple[float, float]:
    """How sure the gap is: both sides resampled, the reference speakers' utterances as well as the test
    speakers' (a model that calls every test utterance one class has a test UA no resample moves, and the
    reference is a sample too). Measurements stored before the reference's predictions were kept resample
    the test side only."""
    if any("reference_preds" not in p for _, p in parts):
        return S.bootstrap_interval(lambda ix: reference - S.ua(labels[ix], preds[ix], C), len(labels),
                                    options.bootstrap, options.seed)
    ref_labels = np.concatenate([np.asarray(p["reference_labels"], int) for _, p in parts])
    ref_preds = np.concatenate([np.asarray(p["reference_preds"], int) for _, p in parts])
    return S.two_sample_interval(lambda ia: S.ua(ref_labels[ia], ref_preds[ia], C), len(ref_labels),
                                 lambda ib: S.ua(labels[ib], preds[ib], C), len(labels), options.bootstrap,
                                 options.seed)


def _edge(diff: np.ndarray, upper: bool, drop: float = -6.0) -> float | None:
    """The band edge beyond which every band of the test spectrum lies ``drop`` dB or more below training's:
    above 1 kHz (``upper``) or below it; None when there is none."""
    mids = np.sqrt(BANDS[:-1] * BANDS[1:])
    side = np.flatnonzero(mids >= 1000) if upper else np.flatnonzero(mids < 1000)[::-1]
    edge = None
    for b in side[::-1]:  # from the outermost band inwards
        if diff[b] > drop:
            break
        edge = float(BANDS[b] if upper else BANDS[b + 1])
    return edge


def _value(key: str, v: float) -> str:
    if key == "clipped":
        return f"{100 * v:.2f} %"
    if key == "bits":
        return f"{v:.1f} bits"
    return f"{v:.0f} {DESCRIPTORS[key][1]}"
