"""Rank the likely causes of misclassification, each with its evidence and what to try.

Each rule turns one section's numbers into a score on a common scale, roughly "UA at stake"
(0 = no sign of this cause, 0.2 = a large effect), so that the causes can be sorted. The
thresholds below mark where a cause is worth mentioning at all.
"""

from __future__ import annotations

import math

from ser.diagnose.fitting import loss_trend


def _cause(name: str, score: float, evidence: str, advice: str) -> dict:
    return {"cause": name, "score": round(float(score), 4), "evidence": evidence, "try": advice}


def rank_causes(ev: dict) -> list[dict]:
    """``ev``: the report's numbers (see ``ser.diagnose.report.collect``) -> causes, most likely first."""
    names, causes = ev["class_names"], []
    knobs = ev.get("settings", {})  # what the run already used, so advice does not repeat it

    # Class imbalance: recall follows the training share.
    share, recall, r = ev["train_share"], ev["recall"], ev["imbalance_r"]
    worst = min(range(len(names)), key=lambda c: recall[c])
    best = max(range(len(names)), key=lambda c: recall[c])
    if not math.isnan(r) and r > 0.3:
        causes.append(_cause(
            "class imbalance",
            r * (recall[best] - recall[worst]),
            f"{names[worst]} recall {recall[worst]:.2f} with {100 * share[worst]:.0f} % of the training data "
            f"({names[best]} {recall[best]:.2f} with {100 * share[best]:.0f} %); recall vs training share r = {r:.2f}",
            "data.sampler=balanced or loss=focal (the run already weights the loss by class); more data for the weak class"
            if knobs.get("class_weighted") else "loss.class_weighted=true or data.sampler=balanced (or loss=focal)",
        ))

    # The most confused pair, when it dominates the errors.
    if ev["pairs"]:
        pair = ev["pairs"][0]
        if pair["share"] >= 0.2:
            causes.append(_cause(
                "confusable classes",
                pair["share"] * (1 - ev["ua"]) * 0.5,
                f"{pair['true']} is taken for {pair['predicted']} {pair['count']} times "
                f"({100 * pair['share']:.0f} % of {pair['true']}); see the examples under Confusions",
                ("features.deltas=2, features.spectral=true" if knobs.get("prosody") else
             "features=logmel_prosody (F0 and energy separate arousal levels), features.deltas=2")
            + ", or data.merge if the corpus's labels overlap",
            ))

    # Speaker variability.
    spk = ev["speaker_ua"]
    if len(spk) >= 2:
        values = [v["ua"] for v in spk.values() if not math.isnan(v["ua"])]
        spread = float(_std(values))
        if spread > 0.05:
            lo = min(spk, key=lambda s: spk[s]["ua"] if not math.isnan(spk[s]["ua"]) else 9)
            causes.append(_cause(
                "speaker variability",
                spread,
                f"UA per speaker {min(values):.2f}-{max(values):.2f} (std {spread:.2f}); lowest: speaker {lo}",
                "augment=full (gain, speed, pitch), more training speakers; features.normalize=speaker "
                "(transductive: report it separately)",
            ))

    # Noise robustness.
    curve = ev["noise_ua"]
    if 10.0 in curve:
        drop = ev["ua"] - curve[10.0]
        if drop > 0.03:
            # Half weight: a robustness risk for noisy deployment audio, not a cause of this test set's errors.
            causes.append(_cause(
                "sensitivity to noise",
                0.5 * drop,
                f"UA {ev['ua']:.2f} clean, {curve[10.0]:.2f} at 10 dB SNR, {curve.get(0.0, float('nan')):.2f} at 0 dB "
                "(white noise added at test time)",
                "a lower augment.snr_db range and a higher augment.noise_p (the run already adds noise)"
                if knobs.get("noise_augmented") else "augment=noise (augment.snr_db=[0,20]) if deployment audio is noisy",
            ))

    # Over- and under-fitting: judged on the training speakers in eval mode (the training curve runs
    # in train mode, with dropout and random crops, and is not comparable with validation).
    fit = ev.get("fitting") or {}
    if "gap" in fit:
        if fit["gap"] > 0.1:
            trend = f"; {loss_trend(fit)[0].lower()}{loss_trend(fit)[1:-1]}" if fit.get("val_loss_rose") else ""
            causes.append(_cause(
                "overfitting",
                0.5 * fit["gap"],
                f"UA {fit['train_ua_eval']:.2f} on the training speakers against {fit['test_ua_folds']:.2f} on the test "
                f"speakers (both in eval mode){trend}",
                "augment=specaugment or full, module.head_dropout=0.5, a smaller model (model.depth=2), "
                "loss.label_smoothing=0.1",
            ))
        if fit["train_ua_eval"] < 0.7:
            after = f" after {fit['epochs']} epochs" if "epochs" in fit else ""
            causes.append(_cause(
                "underfitting",
                0.7 - fit["train_ua_eval"],
                f"UA only {fit['train_ua_eval']:.2f} on the training speakers themselves (eval mode){after}",
                "train longer (trainer.max_epochs), raise optimizer.lr, a larger model (model.hidden, model.depth)",
            ))

    # Calibration (does not change UA, but makes probabilities misleading).
    if ev["ece"] > 0.08:
        gap = ev["mean_confidence"] - ev["accuracy"]
        kind = "over-confident" if gap > 0.03 else "under-confident" if gap < -0.03 else "wrong in both directions by bin"
        causes.append(_cause(
            "miscalibrated probabilities",
            0.5 * ev["ece"],
            f"ECE {ev['ece']:.3f}: mean confidence {ev['mean_confidence']:.2f} vs accuracy {ev['accuracy']:.2f} "
            f"({kind})",
            ("" if knobs.get("label_smoothing") else "loss.label_smoothing=0.1, or ")
            + "temperature-scale the logits on validation data before trusting probabilities",
        ))

    # Utterance length.
    buckets = [b for b in ev["duration"] if b["n"] >= 10 and not math.isnan(b["ua"])]
    if len(buckets) >= 2:
        low, high = min(buckets, key=lambda b: b["ua"]), max(buckets, key=lambda b: b["ua"])
        if high["ua"] - low["ua"] > 0.1:
            causes.append(_cause(
                "utterance length",
                0.5 * (high["ua"] - low["ua"]),
                f"UA {low['ua']:.2f} for {_span(low)} vs {high['ua']:.2f} for {_span(high)}",
                "data.max_train_s (crop length seen in training), data.max_eval_s, or ser.predict window_s for long files",
            ))

    # Features that carry nothing (or everything).
    occl = ev["occlusion"]
    if occl:
        drops = {g: ev["ua"] - v for g, v in occl.items()}
        # Slices of one spectrogram or of mixed hidden units are not separable options; rows, layers are.
        extra = [g for g in drops if not g.startswith(("mel ", "MFCC ", "units ")) and drops[g] < 0.005]
        top = max(drops, key=drops.get)
        if extra:
            layers = [g for g in extra if g.startswith("layer ")]
            advice = ("choose features.layers without " + ", ".join(layers) if layers else
                      "drop the unused rows (features.prosody/spectral/deltas) or try features=mfcc")
            causes.append(_cause(
                "redundant features",
                0.01,
                f"occluding {', '.join(extra)} changes UA by less than 0.005; the model leans on {top} "
                f"(UA -{drops[top]:.2f} without it)",
                advice,
            ))
    # Dataset bias: the test corpus is not what the model trained on.
    shift = ev.get("corpus_shift")
    if shift and shift["gap"] > 0.05:
        collapsed = [c["class"] for c in shift["classes"] if c["verdict"] == "collapses"]
        acc = shift["corpus_accuracy"]
        causes.append(_cause(
            "dataset bias",
            shift["gap"],
            f"UA {shift['in_domain']['ua']:.2f} in-domain ({', '.join(shift['train_corpora'])}) vs "
            f"{shift['cross']['ua']:.2f} on {', '.join(shift['test_corpora'])}"
            + (f"; {', '.join(collapsed)} collapse{'s' if len(collapsed) == 1 else ''}" if collapsed else "")
            + ("" if math.isnan(acc) else f"; a corpus classifier on the embeddings scores {acc:.2f} "
               f"(chance {shift['corpus_chance']:.2f})"),
            ", ".join(
                ([] if knobs.get("corpus_normalized") else ["features.normalize=corpus (transductive: report apart)"])
                + ["augment=full or noise for channel variety", "more training corpora with data.balance=corpus"]
                + ([] if knobs.get("pretrained") else ["a pretrained upstream (experiment=pretrained)"])),
        ))
    return sorted(causes, key=lambda c: -c["score"])


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _span(bucket: dict) -> str:
    if math.isinf(bucket["high"]):
        return f"{bucket['low']:.1f} s and longer"
    if bucket["low"] == 0:
        return f"under {bucket['high']:.1f} s"
    return f"{bucket['low']:.1f}-{bucket['high']:.1f} s"
