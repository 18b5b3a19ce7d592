"""Class imbalance, judged on imbalance: only classes that are rare in the training data can be its
victims, and only their balance with the other classes can be off. Two ways it shows: the rare classes'
recall falls short of the others' (an unweighted model ignores them), or the model leans the other way
(class weights or oversampling overshoot, and the common classes lose recall to the rare ones). The UA
at stake is the larger of the rare classes' recall shortfall and what one shift of the rare classes'
logits against the others wins back (fitted on the test predictions: one number, little optimism)."""

from __future__ import annotations

import numpy as np

from ser import stats as S
from ser.diagnose import figures as F
from ser.diagnose.check import Check
from ser.diagnose.evidence import Finding

RARE = 0.4  # a class with less than 40 % of the median class's share of the training data is rare


def rare_classes(share: np.ndarray) -> list[int]:
    """Indices of classes whose training share is below ``RARE`` times the median share of classes trained on."""
    trained = share[share > 0]
    if len(trained) < 2:
        return []
    return [c for c in range(len(share)) if share[c] < RARE * np.median(trained)]


# a corpus whose largest class is at most twice its smallest cannot suffer from imbalance
BALANCED = 2.0
SHIFTS = np.linspace(-4, 4, 33)  # the logit shifts tried for the rare classes


def rebalanced(labels: np.ndarray, logp: np.ndarray, C: int, rare: list[int]) -> tuple[float, float]:
    """(UA gained by the best shift of the rare classes' log-probabilities, that shift)."""
    base = S.ua(labels, logp.argmax(1), C)
    best, shift = base, 0.0
    for delta in SHIFTS:
        moved = logp.copy()
        moved[:, rare] += delta
        value = S.ua(labels, moved.argmax(1), C)
        if value > best + 1e-9:
            best, shift = value, float(delta)
    return best - base, shift


def shortfall(labels: np.ndarray, preds: np.ndarray, C: int, rare: list[int]) -> float:
    """UA lost by the rare classes: the sum over rare classes (present in ``labels``) of how far their
    recall falls short of the mean recall of the other present classes, divided by the present classes."""
    recall = S.recall_per_class(S.confusion(labels, preds, C))
    present = ~np.isnan(recall)
    others = [c for c in range(C) if present[c] and c not in rare]
    if not others or not any(present[c] for c in rare):
        return float("nan")
    reference = np.mean(recall[others])
    return float(sum(max(0.0, reference - recall[c]) for c in rare if present[c]) / present.sum())


class Imbalance(Check):
    name, title = "imbalance", "Imbalance"
    causes = ("imbalance",)

    def verify_metric(self, finding, m):
        rare = m.get("rare") or []
        if rare:  # what class weights or more data for them should raise
            return f"recall of {', '.join(rare)}", [f"test/recall/{c}" for c in rare]
        return "UA", ["test/ua"]

    def absent_by_construction(self, class_counts):
        return max(class_counts) <= BALANCED * max(min(class_counts), 1)

    def measure(self, ev, run):
        share = ev.train_counts / max(ev.train_counts.sum(), 1)
        rare = rare_classes(share)
        # What the logits would say without the training prior (a class-weighted or balanced run has none).
        weighted = ev.settings.class_weighted or ev.settings.balanced_sampler
        prior = np.full(ev.C, 1 / ev.C) if weighted else np.maximum(share, 1e-6)
        adjusted = S.ua(ev.labels, (ev.probs / prior).argmax(1), ev.C)
        m = {"train_counts": ev.train_counts.tolist(), "train_share": share.tolist(), "recall": ev.recall.tolist(),
             "r": S.pearson(share, ev.recall), "ratio": float(share.max() / max(share[share > 0].min(), 1e-9)),
             "rare": [ev.class_names[c] for c in rare], "prior_adjusted_ua": adjusted, "score": 0.0}
        if rare:
            logp = np.log(np.clip(ev.probs, 1e-9, None))
            gain, shift = rebalanced(ev.labels, logp, ev.C, rare)
            m |= {"shortfall": shortfall(ev.labels, ev.preds, ev.C, rare), "rebalance_gain": gain, "shift": shift}
            m["score"] = max(m["shortfall"], gain)

            def cost(ix):
                labels = ev.labels[ix]
                return max(shortfall(labels, ev.preds[ix], ev.C, rare), rebalanced(labels, logp[ix], ev.C, rare)[0])

            m["interval"] = S.bootstrap_interval(cost, ev.n, max(50, run.options.bootstrap // 4), run.options.seed)
        return m

    def judge(self, m, ev):
        if not m["rare"] or not m["score"] > 0:
            return []
        names, share = ev.class_names, m["train_share"]
        rare = [names.index(c) for c in m["rare"]]
        common = [c for c in range(ev.C) if c not in rare and ev.present[c]]
        worst = min(rare, key=lambda c: m["recall"][c])
        best = max(common, key=lambda c: m["recall"][c]) if common else worst
        s = ev.settings
        # Class weights, and nothing on top of them: followed on EmoDB with 10 / 25 % of three classes left
        # (verify=true, experiments/diagnosis/README.md), a class-weighted run lost rare-class recall to every
        # further correction (balanced batches +0.02 / -0.07, the focal loss -0.28, logit adjustment instead of
        # the weights -0.03 / -0.02, balanced batches with cached copies -0.01 / 0.00), and without the weights
        # it falls from 0.63-0.68 to 0.27-0.38. A class-weighted run is told what would help: more data.
        advice = [] if s.class_weighted else ["loss.class_weighted=true"]
        return [Finding("imbalance", "class imbalance", m["score"],
                        f"{', '.join(m['rare'])} {'is' if len(rare) == 1 else 'are'} rare in training "
                        f"({names[worst]}: {100 * share[worst]:.0f} % of the data, recall {m['recall'][worst]:.2f}; "
                        f"{names[best]}: {100 * share[best]:.0f} %, recall {m['recall'][best]:.2f}); "
                        + (f"shifting the rare classes' logits by {m['shift']:+.1f} would win {m['rebalance_gain']:.2f} UA"
                           if m["rebalance_gain"] > m["shortfall"] else
                           f"their recall falls {m['shortfall']:.2f} UA short of the other classes'"),
                        advice, f"more training data for {', '.join(m['rare'])}", interval=m.get("interval"))]

    def section(self, m, ev):
        L = ["## Imbalance", "",
             f"Largest class share over smallest: {m['ratio']:.1f}. Rare classes (under {RARE:g} x the median share): "
             f"{', '.join(m['rare']) or 'none'}. Correlation between a class's share of the training data and its "
             f"test recall: r = {_f(m['r'])}. UA with the training prior divided out of the probabilities: "
             f"{m['prior_adjusted_ua']:.3f} (as tested: {ev.ua:.3f})."
             + (f" The rare classes' recall falls {m['shortfall']:.3f} UA short of the others'; shifting their logits by "
                f"{m['shift']:+.1f} against the others would win {m['rebalance_gain']:.3f} UA." if m["rare"] else ""), "",
             "| class | training utterances | share | test recall |", "|---|---|---|---|"]
        L += [f"| {n} | {int(m['train_counts'][i])} | {100 * m['train_share'][i]:.1f} % | {m['recall'][i]:.3f} |"
              for i, n in enumerate(ev.class_names)]
        return L + ["", "![imbalance](imbalance.png)", ""]

    def figures(self, m, ev):
        return {"imbalance.png": F.scatter_imbalance(m["train_share"], m["recall"], ev.class_names, m["r"])}


def _f(x) -> str:
    return "n/a" if x is None or np.isnan(x) else f"{x:.2f}"
