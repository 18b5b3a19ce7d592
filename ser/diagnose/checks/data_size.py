"""Too little data: the run's recipe retrained on 25 and 50 % of every class's training utterances
(the same folds, seeds and test speakers). A curve still rising at 100 % says more data would pay;
the UA the last doubling won (100 % against 50 %) estimates what the next one would win. Noisy labels
make any recipe hungrier for data: with label noise found, this is ranked as its consequence."""

from __future__ import annotations

import logging

import numpy as np

from ser import stats as S
from ser.diagnose import figures as F
from ser.diagnose.check import REPORT_ABOVE, Check
from ser.diagnose.evidence import Finding

log = logging.getLogger(__name__)
SHARES = (0.25, 0.5)
RISING = -0.02  # 50 % may fall short of 25 % by this much and the curve still counts as rising (noise)
# Optimizer steps a frozen upstream's small head should get: with few utterances an epoch is a step or two,
# and the recipe's epochs leave it short. Followed on EmoDB with 10 / 25 % of the training data (verify),
# more epochs to about this many steps won UA where cached noise copies and a smaller head lost it.
MIN_STEPS = 250


class DataSize(Check):
    name, title = "data_size", "Training data"
    causes = ("too_little_data",)

    def measure(self, ev, run):
        refused = run.refuse_retraining(sum(SHARES))
        if refused:
            return {"skipped": refused}
        probs = {1.0: ev.probs}
        for share in SHARES:
            parts = []
            for f in ev.folds:
                parts.append(run.retrain(f.fold, share, f"share_{int(100 * share)}", f.index))
                log.info("learning curve: fold %s on %d %% of its training data: UA %.3f", f.fold, 100 * share,
                         S.ua(f.labels, parts[-1].argmax(1), ev.C))
            probs[share] = np.concatenate(parts)
        preds = {s: p.argmax(1) for s, p in probs.items()}
        curve = {s: S.ua(ev.labels, p, ev.C) for s, p in preds.items()}

        def last_doubling(ix):
            return S.ua(ev.labels[ix], preds[1.0][ix], ev.C) - S.ua(ev.labels[ix], preds[0.5][ix], ev.C)

        n_train = float(np.mean([len(run.use(f.fold).train) for f in ev.folds]))
        return {"ua": {str(s): v for s, v in sorted(curve.items())}, "gain": curve[1.0] - curve[0.5], "n_train": n_train,
                "rising": curve[0.5] - curve[0.25] >= RISING and curve[1.0] > curve[0.5],
                "interval": S.bootstrap_interval(last_doubling, ev.n, run.options.bootstrap, run.options.seed)}

    def judge(self, m, ev):
        if "skipped" in m or not m["rising"] or m["gain"] < REPORT_ABOVE:
            return []
        u, s = m["ua"], ev.settings
        advice = [] if s.pretrained else ["experiment=pretrained"]
        steps = int(np.ceil(m.get("n_train", 0) / s.batch_size)) if s.batch_size else 0
        if s.pretrained and steps and s.max_epochs and steps * s.max_epochs < MIN_STEPS:
            advice.append(f"trainer.max_epochs={int(5 * np.ceil(MIN_STEPS / steps / 5))}")  # the head's steps, not data
        elif not s.pretrained:
            advice.append("augment=full")
        return [Finding("too_little_data", "too little data", m["gain"],
                        f"UA {u['0.25']:.2f} / {u['0.5']:.2f} / {u['1.0']:.2f} with 25 / 50 / 100 % of the training "
                        "utterances: still rising, so more data should pay", advice,
                        "more training utterances or speakers", interval=m["interval"],
                        explained_by=("label_noise",))]  # noisy labels make a recipe hungry for data

    def section(self, m, ev):
        L = ["## Training data", ""]
        if "skipped" in m:
            return L + [f"Learning curve not measured: {m['skipped']}.", ""]
        u = m["ua"]
        L += ["The run's recipe retrained on part of every class's training utterances (same folds and test speakers):",
              "", "| training data | UA |", "|---|---|"]
        L += [f"| {100 * float(s):.0f} % | {v:.3f} |" for s, v in u.items()]
        trend = "the curve is still rising." if m["rising"] else "the curve has levelled off."
        L += ["", f"The last doubling (50 -> 100 %) won {m['gain']:+.3f} UA (90 % interval {m['interval'][0]:+.3f} to "
              f"{m['interval'][1]:+.3f}); " + trend,
              "", "![learning curve](learning_curve.png)", ""]
        return L

    def figures(self, m, ev):
        if "skipped" in m:
            return {}
        shares = [100 * float(s) for s in m["ua"]]
        return {"learning_curve.png": F.curve(shares, list(m["ua"].values()), "learning curve",
                                              "share of the training utterances", "test UA", logx=True,
                                              ticks=[f"{s:.0f} %" for s in shares])}
