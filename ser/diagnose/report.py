"""Pool fold results, compute every section, write ``report.md``, ``diagnosis.json`` and the figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ser.diagnose import analysis as A
from ser.diagnose import figures as F
from ser.diagnose.causes import rank_causes
from ser.diagnose.evaluate import FoldResult
from ser.diagnose.fitting import fitting_evidence, loss_trend
from ser.plots import plt


def collect(results: list[FoldResult], curves: dict[str, dict], class_names: list[str], examples: int = 3,
            settings: dict | None = None) -> dict:
    """Every number of the report from the folds' test predictions (pooled) and training curves.

    ``settings``: knobs the run already used (``class_weighted``, ``prosody``, ``noise_augmented``),
    so that the advice does not suggest them again.
    """
    C = len(class_names)
    probs = np.concatenate([r.probs for r in results])
    labels = np.concatenate([r.labels for r in results])
    preds = probs.argmax(1)
    paths = sum((r.paths for r in results), [])
    counts = A.confusion(labels, preds, C)
    prf = A.precision_recall_f1(counts)
    train_counts = np.sum([r.train_counts for r in results], axis=0).astype(float)
    share = (train_counts / max(train_counts.sum(), 1)).tolist()
    pairs = []
    for i, j, n, frac in A.confused_pairs(counts):
        which = np.flatnonzero((labels == i) & (preds == j))[:examples]
        pairs.append({"true": class_names[i], "predicted": class_names[j], "count": n, "share": frac,
                      "examples": [paths[k] for k in which]})
    durations = np.concatenate([r.durations for r in results])
    weights = np.array([len(r.labels) for r in results], float)
    snrs = sorted(results[0].noise_ua, reverse=True)
    calib = A.calibration(probs, labels)
    genders = sum((r.genders for r in results), [])
    fold_fits = {name: fitting_evidence(c) for name, c in curves.items()}
    ev = {
        "class_names": class_names,
        "n": int(len(labels)),
        "folds": [r.fold for r in results],
        "ua": A.ua(labels, preds, C),
        "wa": float((labels == preds).mean()),
        "macro_f1": float(prf["f1"][prf["support"] > 0].mean()),
        "confusion": counts.tolist(),
        "precision": prf["precision"].tolist(),
        "recall": prf["recall"].tolist(),
        "f1": prf["f1"].tolist(),
        "support": prf["support"].tolist(),
        "pairs": pairs,
        "train_counts": train_counts.tolist(),
        "train_share": share,
        "imbalance_r": A.pearson(share, prf["recall"]),
        "speaker_ua": A.ua_by_group(sum((r.speakers for r in results), []), labels, preds, C),
        "gender_ua": A.ua_by_group(genders, labels, preds, C) if any(genders) else {},
        # Noise and occlusion UAs are per fold; pooled as a test-size-weighted mean.
        "noise_ua": {s: float(np.average([r.noise_ua[s] for r in results], weights=weights)) for s in snrs},
        "duration": A.ua_by_duration(durations, labels, preds, C),
        "ece": calib["ece"],
        "calibration_bins": calib["bins"],
        "mean_confidence": calib["mean_confidence"],
        "accuracy": calib["accuracy"],
        "fitting": _fitting(results, fold_fits, C),
        "fitting_per_fold": fold_fits,
        "occlusion": {g: float(np.average([r.occlusion[g] for r in results], weights=weights))
                      for g in results[0].occlusion},
        "per_fold": [_fold_row(r, C, fold_fits.get(r.fold)) for r in results],
        "settings": dict(settings or {}),
        "corpus_shift": A.corpus_shift([r.shift for r in results], class_names),
    }
    ev["causes"] = rank_causes(ev)
    return ev


def _fitting(results: list[FoldResult], fold_fits: dict[str, dict | None], C: int) -> dict | None:
    """The fitting gap (UA on the training speakers minus UA on the test speakers, both in eval mode
    with the tested weights; means over folds), and what the validation curves show."""
    out = {}
    measured = [r for r in results if r.train_ua is not None]
    if measured:
        train = float(np.mean([r.train_ua for r in measured]))
        test = float(np.mean([A.ua(r.labels, r.probs.argmax(1), C) for r in measured]))
        out |= {"train_ua_eval": train, "test_ua_folds": test, "gap": train - test}
    fits = [f for f in fold_fits.values() if f]
    if fits:
        rose = sum(f["val_loss_rose"] for f in fits)
        out |= _mean_dict([{k: v for k, v in f.items() if k != "val_loss_rose"} for f in fits])
        out |= {"val_loss_rose": rose > len(fits) / 2, "val_loss_rose_folds": rose, "curve_folds": len(fits)}
    return out or None


def _mean_dict(dicts: list[dict]) -> dict:
    out = {}
    for k in dicts[0]:
        values = [d[k] for d in dicts if d[k] is not None]
        if not values:
            out[k] = None
        else:
            out[k] = float(np.mean(values)) if isinstance(values[0], float) else int(round(np.mean(values)))
    return out


def _fold_row(r: FoldResult, C: int, fit: dict | None) -> dict:
    preds = r.probs.argmax(1)
    return {"fold": r.fold, "n": len(r.labels), "speakers": sorted(set(r.speakers)), "ua": A.ua(r.labels, preds, C),
            "wa": float((r.labels == preds).mean()), "ece": A.calibration(r.probs, r.labels)["ece"],
            "ua_10db": r.noise_ua.get(10.0, float("nan")),
            "gap": r.train_ua - A.ua(r.labels, preds, C) if r.train_ua is not None else float("nan")}


# -- writing --------------------------------------------------------------------------------
def write(ev: dict, curves: dict[str, dict], out: Path, title: str, tensorboard: bool = True) -> Path:
    """``report.md``, ``diagnosis.json`` and PNG figures in ``out``; figures also to ``out/tensorboard``."""
    out.mkdir(parents=True, exist_ok=True)
    names = ev["class_names"]
    figs = {
        "confusion.png": F.confusion_pair(np.array(ev["confusion"]), names),
        "per_class.png": F.bars({"precision": ev["precision"], "recall": ev["recall"], "F1": ev["f1"]}, names,
                                "per-class precision, recall, F1", "score", hline=ev["ua"]),
        "imbalance.png": F.scatter_imbalance(ev["train_share"], ev["recall"], names, ev["imbalance_r"]),
        "speakers.png": F.bars({"UA": [v["ua"] for v in ev["speaker_ua"].values()]}, list(ev["speaker_ua"]),
                               "UA per test speaker", "UA", hline=ev["ua"]),
        "noise.png": F.line(np.array(["clean"] + [f"{s:g} dB" for s in ev["noise_ua"]]),
                            {"UA": [ev["ua"], *ev["noise_ua"].values()]}, "UA with white noise at test time",
                            "SNR", "UA"),
        "duration.png": F.bars({"UA": [b["ua"] for b in ev["duration"]]}, [_bucket(b) for b in ev["duration"]],
                               "UA by utterance length", "UA", hline=ev["ua"]),
        "calibration.png": F.reliability(ev["calibration_bins"], ev["ece"]),
    }
    if ev["occlusion"]:
        figs["occlusion.png"] = F.horizontal_bars({g: ev["ua"] - v for g, v in ev["occlusion"].items()},
                                                  "UA lost when a feature group is occluded", "UA drop")
    usable = {k: c for k, c in curves.items() if c.get("val/ua") or c.get("train/loss")}
    if usable:
        mean = len(usable) > 1
        figs["fitting.png"] = F.fitting({key: _mean_curve([c.get(key, []) for c in usable.values()]) for key in
                                         ("train/ua", "val/ua", "train/loss", "val/loss")}, mean_of_folds=mean)
    writer = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"))
    for name, fig in figs.items():
        fig.savefig(out / name, dpi=110)
        if writer is not None:
            writer.add_figure(f"diagnosis/{name.removesuffix('.png')}", fig)
        plt.close(fig)
    if writer is not None:
        writer.close()
    (out / "diagnosis.json").write_text(json.dumps(_jsonable(ev), indent=2) + "\n")
    (out / "report.md").write_text(markdown(ev, title, set(figs)))
    return out / "report.md"


def _mean_curve(curves: list[list[float]]) -> list[float]:
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0).tolist() if n else []


def _bucket(b: dict) -> str:
    return f">= {b['low']:.1f} s" if math.isinf(b["high"]) else f"{b['low']:.1f}-{b['high']:.1f} s"


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def _f(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def markdown(ev: dict, title: str, figures: set[str]) -> str:
    names = ev["class_names"]
    L = [f"# Diagnosis: {title}", ""]
    L += [f"Test utterances: {ev['n']} ({len(ev['folds'])} fold{'s' if len(ev['folds']) > 1 else ''}, pooled). "
          f"**UA {ev['ua']:.3f}**, WA {ev['wa']:.3f}, macro-F1 {ev['macro_f1']:.3f}; chance UA {1 / len(names):.3f}.", ""]
    L += ["## Likely causes, ranked", ""]
    if ev["causes"]:
        for k, c in enumerate(ev["causes"], 1):
            L.append(f"{k}. **{c['cause']}** (score {c['score']:.3f}): {c['evidence']}. *Try:* {c['try']}.")
    else:
        L.append("No cause stands out: the errors are spread evenly. More data or a stronger model is the lever.")
    L += ["", "How to read this:",
          "- **score** (\"UA at stake\"): a rough estimate of the UA a cause costs (the recall spread it explains, "
          "the UA lost at 10 dB SNR, half the fitting gap, ...), only to order the causes; scores do not add up.",
          "- **UA**: mean recall over the classes present in the test labels (chance = 1 / classes); **WA**: accuracy.",
          "- **fitting gap**: UA on the training speakers minus UA on the test speakers, both with the tested "
          "weights in eval mode.",
          "- **ECE**: expected calibration error, the mean gap between confidence and accuracy over 10 bins.",
          "- Epochs are counted from 1. The sections below hold the evidence.", ""]

    L += ["## Confusions", "", "![confusion](confusion.png)", "", "| class | precision | recall | F1 | support |",
          "|---|---|---|---|---|"]
    L += [f"| {n} | {ev['precision'][i]:.3f} | {ev['recall'][i]:.3f} | {ev['f1'][i]:.3f} | {int(ev['support'][i])} |"
          for i, n in enumerate(names)]
    L += ["", "![per class](per_class.png)", "", "Most confused pairs (true -> predicted):", "",
          "| true | predicted | count | share of true class | examples |", "|---|---|---|---|---|"]
    for p in ev["pairs"]:
        L.append(f"| {p['true']} | {p['predicted']} | {p['count']} | {p['share']:.2f} | "
                 + "<br>".join(f"`{e}`" for e in p["examples"]) + " |")

    L += ["", "## Imbalance", "",
          f"Pearson correlation between a class's share of the training data and its test recall: "
          f"**r = {_f(ev['imbalance_r'])}** (near 1: the model favours frequent classes).", "",
          "| class | training utterances | share | test recall |", "|---|---|---|---|"]
    L += [f"| {n} | {int(ev['train_counts'][i])} | {100 * ev['train_share'][i]:.1f} % | {ev['recall'][i]:.3f} |"
          for i, n in enumerate(names)]
    L += ["", "![imbalance](imbalance.png)", ""]

    spk = ev["speaker_ua"]
    values = [v["ua"] for v in spk.values()]
    L += ["## Speakers", "", f"UA per test speaker: min {_f(min(values))}, max {_f(max(values))}, "
          f"std {_f(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)}.", "", "| speaker | n | UA | WA |",
          "|---|---|---|---|"]
    L += [f"| {s} | {v['n']} | {_f(v['ua'])} | {_f(v['wa'])} |" for s, v in spk.items()]
    if ev["gender_ua"]:
        L += ["", "| gender | n | UA | WA |", "|---|---|---|---|"]
        L += [f"| {g or 'unknown'} | {v['n']} | {_f(v['ua'])} | {_f(v['wa'])} |" for g, v in ev["gender_ua"].items()]
    else:
        L += ["", "The corpus gives no speaker gender."]
    L += ["", "![speakers](speakers.png)", ""]

    L += ["## Noise", "", "UA with white noise added to the test audio at each SNR (seeded; the model never saw it "
          "unless trained with augment=noise):", "", "| SNR | UA |", "|---|---|", f"| clean | {ev['ua']:.3f} |"]
    L += [f"| {s:g} dB | {_f(v)} |" for s, v in ev["noise_ua"].items()]
    L += ["", "![noise](noise.png)", ""]

    L += ["## Duration", "", "| length | n | UA | WA |", "|---|---|---|---|"]
    L += [f"| {_bucket(b)} | {b['n']} | {_f(b['ua'])} | {_f(b['wa'])} |" for b in ev["duration"]]
    L += ["", "![duration](duration.png)", ""]

    L += ["## Calibration", "",
          f"Expected calibration error (10 equal-width bins): **ECE {ev['ece']:.3f}**; mean confidence "
          f"{ev['mean_confidence']:.3f} against accuracy {ev['accuracy']:.3f}.", "",
          "| confidence | n | accuracy | mean confidence |", "|---|---|---|---|"]
    L += [f"| {b['low']:.1f}-{b['high']:.1f} | {b['n']} | {b['accuracy']:.3f} | {b['confidence']:.3f} |"
          for b in ev["calibration_bins"]]
    L += ["", "![calibration](calibration.png)", ""]

    L += ["## Fitting", ""]
    fit = ev["fitting"] or {}
    folds = " (means over folds)" if len(ev["folds"]) > 1 else ""
    if "gap" in fit:
        L += [f"With the tested weights in eval mode (whole utterances, no dropout or augmentation){folds}: UA "
              f"{fit['train_ua_eval']:.3f} on the training speakers against {fit['test_ua_folds']:.3f} on the test "
              f"speakers, a fitting gap of **{fit['gap']:.3f}**.", ""]
    if "epochs" in fit:
        rose = (f" It rose in {fit['val_loss_rose_folds']} of {fit['curve_folds']} folds."
                if fit["curve_folds"] > 1 and fit["val_loss_rose_folds"] else "")
        L += [f"The validation curve{folds} peaked at epoch {fit['best_epoch']} of {fit['epochs']} (UA {fit['val_ua']:.3f}; "
              f"{fit['final_val_ua']:.3f} at the last epoch). " + loss_trend(fit) + rose, "",
              "The training curve in the figure is measured in train mode (dropout, random crops, augmentation), "
              "so it can sit below validation without meaning underfitting.", ""]
        if "fitting.png" in figures:
            L += ["![fitting](fitting.png)", ""]
    elif not fit:
        L += ["No training curves found (the run's tensorboard/ folder is missing).", ""]

    L += ["## Features", "",
          "UA when each group of feature rows is occluded (set to its training mean) before the encoder:", "",
          "| group | UA | drop |", "|---|---|---|"]
    for g, v in sorted(ev["occlusion"].items(), key=lambda kv: kv[1]):
        L.append(f"| {g} | {v:.3f} | {ev['ua'] - v:+.3f} |")
    if "occlusion.png" in figures:
        L += ["", "![occlusion](occlusion.png)"]
    L += [""]

    L += _corpus_shift_section(ev.get("corpus_shift"))

    if len(ev["per_fold"]) > 1:
        L += ["## Per fold", "", "| fold | speakers | n | UA | WA | ECE | UA at 10 dB | fitting gap |",
              "|---|---|---|---|---|---|---|---|"]
        L += [f"| {r['fold']} | {', '.join(r['speakers'])} | {r['n']} | {r['ua']:.3f} | {r['wa']:.3f} | {r['ece']:.3f} | "
              f"{_f(r['ua_10db'])} | {_f(r['gap'])} |" for r in ev["per_fold"]]
        L += [""]
    return "\n".join(L)


def _corpus_shift_section(shift: dict | None) -> list[str]:
    """'Is it the corpus?': in-domain against cross-corpus UA, per class, and how separable the corpora are."""
    if not shift:
        return []
    where = ("held-out validation speakers of the training corpora" if shift["in_domain_from"] == "validation"
             else "the training utterances themselves (no validation speakers: an optimistic reference)")
    acc, chance = shift["corpus_accuracy"], shift["corpus_chance"]
    if math.isnan(acc):
        seen = "The corpus classifier had too few utterances to run."
    else:
        level = ("near chance: the model's features barely tell the corpora apart" if acc < chance + 0.15 else
                 "close to 1: the features encode the recording (language, microphone, room, speakers) as much as "
                 "the emotion" if acc > 0.9 else "well above chance: the corpora are partly separable")
        seen = (f"A corpus classifier (logistic regression, out of fold) on the model's embeddings tells the corpora "
                f"apart with balanced accuracy **{acc:.3f}** (chance {chance:.3f}), {level}.")
    L = ["## Corpus shift", "",
         f"Trained -> tested: {'; '.join(shift['directions'])}"
         + (" (pooled over folds)" if len(shift["directions"]) > 1 else "")
         + f". In-domain means {where}; cross-corpus means the test corpus. "
         f"**UA {shift['in_domain']['ua']:.3f} in-domain** (n={shift['in_domain']['n']}) against "
         f"**{shift['cross']['ua']:.3f} cross-corpus** (n={shift['cross']['n']}): a gap of {shift['gap']:+.3f}.", "",
         seen, "", "| class | recall in-domain | recall cross-corpus | verdict |", "|---|---|---|---|"]
    L += [f"| {c['class']} | {_f(c['in_domain'])} | {_f(c['cross'])} | {c['verdict']} |" for c in shift["classes"]]
    L += ["", "Transfers: cross-corpus recall at least 70 % of in-domain; collapses: at or below chance. "
          "What helps against corpus shift: per-corpus normalisation (features.normalize=corpus, transductive: "
          "report it separately), channel and noise augmentation (augment=full, augment=noise), training on more "
          "corpora (data.corpora, data.balance=corpus), a pretrained upstream (experiment=pretrained).", ""]
    return L
