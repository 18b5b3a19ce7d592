"""Too little data: the run's recipe retrained on 25 and 50 % of every class's training utterances
(the same folds, seeds and test speakers). A curve still rising at 100 % says more data would pay;
the UA the last doubling won (100 % against 50 %) estimates what the next one would win. Noisy labels
make any recipe hungrier for data: with label noise found, this is ranked as its consequence.

The curve is drawn on the test speakers and on the validation speakers (held out of the training
speakers, recorded as they were). When the test audio differs from the training audio (the mismatch
check's evidence), the validation curve is the one judged: on degraded test audio every share of the
data meets the same mismatch, which flattens the test curve and hides a data shortage beside it.

A curve retrained with the recipe's epochs measures data only when the recipe trains: a from-scratch model
that fits little of its own training utterances after a few optimizer steps, with fewer batches an epoch
than epochs, was given too few utterances for its epochs to train it, and every share of them meets the
same shortage of steps. That is too little data too, with underfitting's UA at stake (``FEW_STEPS``)."""

from __future__ import annotations

import logging

import numpy as np

from ser import stats as S
from ser.diagnose import figures as F
from ser.diagnose.check import REPORT_ABOVE, Check
from ser.diagnose.checks.fitting import FEW_STEPS, Fitting
from ser.diagnose.checks.mismatch import Mismatch
from ser.diagnose.evidence import Finding
from ser.probe import Probe

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
    # degraded test audio: the curve on the validation speakers is the one judged; a model that does not fit its
    # training utterances after a few steps over a few batches: the data, not the curve, says why
    requires = (Mismatch, Fitting)

    def per_fold(self, view):
        if not view.fold.val:
            return None
        preds, labels = view.predictions_on("val")
        return {"preds": preds, "labels": labels, "index": view.order_on("val")}

    def measure(self, ev, run):
        refused = run.refuse_retraining(sum(SHARES))
        if refused:
            return {"skipped": refused}
        probs = {1.0: ev.probs}
        own = ev.per_fold(self.name)
        val = {1.0: own} if all(own) else None  # every fold has validation speakers
        for share in SHARES:
            parts, vals = [], []
            for f in ev.folds:
                vals.append({})
                parts.append(run.retrain(f.fold, share, f"share_{int(100 * share)}", f.index, val=vals[-1]))
                log.info("learning curve: fold %s on %d %% of its training data: UA %.3f", f.fold, 100 * share,
                         S.ua(f.labels, parts[-1].argmax(1), ev.C))
            probs[share] = np.concatenate(parts)
            if val is not None:
                val[share] = vals
        m = _curve(ev.labels, {s: p.argmax(1) for s, p in probs.items()}, ev.C, run.options)
        m["n_train"] = float(np.mean([len(run.use(f.fold).train) for f in ev.folds]))
        if val is not None and all("preds" in v and np.array_equal(v["labels"], own[k]["labels"])
                                   for vs in val.values() for k, v in enumerate(vs)):
            labels = np.concatenate([v["labels"] for v in val[1.0]])
            m["validation"] = _curve(labels, {s: np.concatenate([v["preds"] for v in vs]) for s, vs in val.items()},
                                     ev.C, run.options)
            if run.options.probes:
                m["validation"] |= _capacity_on_validation(run, ev, own, labels)
        return m

    def judge(self, m, ev):
        if "skipped" in m:
            return []
        mismatch = ev.of(Mismatch)
        on_val = bool(mismatch.get("differs")) and mismatch.get("gap", 0.0) >= REPORT_ABOVE and "validation" in m
        where = " on the validation speakers (the test audio differs from training)" if on_val else ""
        m = m["validation"] | {"n_train": m.get("n_train", 0)} if on_val else m
        short = _too_few_steps(m, ev, where)
        if (not m["rising"] or m["gain"] < REPORT_ABOVE) and not short:
            return []
        u, s = m["ua"], ev.settings
        advice = [] if s.pretrained else ["experiment=pretrained"]
        steps = int(np.ceil(m.get("n_train", 0) / s.batch_size)) if s.batch_size else 0
        if s.pretrained and steps and s.max_epochs and steps * s.max_epochs < MIN_STEPS:
            advice.append(f"trainer.max_epochs={int(5 * np.ceil(MIN_STEPS / steps / 5))}")  # the head's steps, not data
        elif not s.pretrained:
            advice.append("augment=full")
        curve = (f"UA {u['0.25']:.2f} / {u['0.5']:.2f} / {u['1.0']:.2f}{where} with 25 / 50 / 100 % of the "
                 "training utterances")
        score, interval, note = m["gain"], m["interval"], "more training utterances or speakers"
        if short and short["score"] > score:
            # what the evidence shows is short is steps: train by them until more data comes
            score, interval = short["score"], short["interval"]
            evidence = short["evidence"] + f" ({curve})"
            note = (f"about {2 * FEW_STEPS} optimizer steps over the data there is; then {note}, or a pretrained "
                    "upstream (experiment=pretrained)")
            advice = [f"trainer.max_epochs={short['epochs']}"]
        else:
            evidence = curve + ": still rising, so more data should pay"
        return [Finding("too_little_data", "too little data", score, evidence, advice, note, interval=interval,
                        # noisy labels make a recipe hungry for data; rare classes are the data a recipe lacks
                        explained_by=("label_noise", "imbalance"))]

    def section(self, m, ev):
        L = ["## Training data", ""]
        if "skipped" in m:
            return L + [f"Learning curve not measured: {m['skipped']}.", ""]
        u, v = m["ua"], (m.get("validation") or {}).get("ua")
        L += ["The run's recipe retrained on part of every class's training utterances (same folds and test speakers):",
              "", "| training data | UA on the test speakers |" + (" UA on the validation speakers |" if v else ""),
              "|---|---|" + ("---|" if v else "")]
        L += [f"| {100 * float(s):.0f} % | {x:.3f} |" + (f" {v[s]:.3f} |" if v else "") for s, x in u.items()]
        for name, c in (("test", m), ("validation", m.get("validation"))):
            if c:
                trend = "still rising." if c["rising"] else "levelled off."
                L += ["", f"On the {name} speakers the last doubling (50 -> 100 %) won {c['gain']:+.3f} UA (90 % "
                      f"interval {c['interval'][0]:+.3f} to {c['interval'][1]:+.3f}): {trend}"]
        val = m.get("validation") or {}
        if "capacity" in val:
            L += ["", f"On the validation speakers a linear probe on the run's own features, trained on the same "
                  f"training utterances, scores UA {val['probe_ua']:.3f} against the model's {val['ua']['1.0']:.3f} "
                  f"({val['capacity']:+.3f}; read when the test audio differs from training)."]
        L += ["", "![learning curve](learning_curve.png)", ""]
        return L

    def figures(self, m, ev):
        if "skipped" in m:
            return {}
        shares = [100 * float(s) for s in m["ua"]]
        val = (m.get("validation") or {}).get("ua")
        return {"learning_curve.png": F.curve(shares, list(m["ua"].values()), "learning curve",
                                              "share of the training utterances", "UA", logx=True,
                                              ticks=[f"{s:.0f} %" for s in shares], label="test speakers",
                                              others={"validation speakers": list(val.values())} if val else None)}


def _capacity_on_validation(run, ev, own: list[dict], labels: np.ndarray) -> dict:
    """A linear probe on the run's own features, trained on each fold's training utterances, against the model on
    the fold's validation speakers (recorded as the training audio was): what the features hold that the model
    does not reach, where the test audio cannot say (it differs from training)."""
    if any("index" not in v for v in own) or run.matrix("own") is None:
        return {}
    preds = []
    for f, v in zip(ev.folds, own):
        fold = run.use(f.fold)
        X, y = run.fold_matrix("own"), np.array(run.dm.targets)
        preds.append(Probe(X[fold.train], y[fold.train], ev.C).predict_proba(X[v["index"]]).argmax(1))
    probe, model = np.concatenate(preds), np.concatenate([v["preds"] for v in own])
    return {"probe_ua": S.ua(labels, probe, ev.C), "capacity": S.ua(labels, probe, ev.C) - S.ua(labels, model, ev.C),
            "capacity_interval": S.bootstrap_interval(
                lambda ix: S.ua(labels[ix], probe[ix], ev.C) - S.ua(labels[ix], model[ix], ev.C), len(labels),
                run.options.bootstrap, run.options.seed)}


def _too_few_steps(m: dict, ev, where: str) -> dict | None:
    """A from-scratch model that does not fit its own training utterances (the fitting check's underfitting)
    after under ``FEW_STEPS`` optimizer steps, with fewer batches an epoch than epochs: the training set is too
    small for the recipe to train at all. The UA at stake is underfitting's (the probe's lead on the same
    features; on the validation speakers, ``where`` says, when the test audio differs from training); None
    otherwise."""
    s, fit, n_train = ev.settings, ev.of(Fitting), m.get("n_train", 0)
    epochs = fit.get("epochs") or s.max_epochs
    if s.pretrained or not (n_train and s.batch_size and epochs):
        return None
    batches = int(np.ceil(n_train / s.batch_size))
    if where and "capacity" not in m:  # the test audio differs, and nothing was measured where it does not
        return None
    at_stake = fit | {k: m[k] for k in ("capacity", "capacity_interval") if where}
    score = Fitting.underfit(at_stake, ev)
    if score is None or score < REPORT_ABOVE or batches * epochs >= FEW_STEPS or batches >= epochs:
        return None
    return {"score": score, "interval": at_stake.get("capacity_interval"),
            "epochs": int(5 * np.ceil(2 * FEW_STEPS / batches / 5)),
            "evidence": f"{n_train:.0f} training utterances a fold are {batches} batch{'es' if batches > 1 else ''} of "
                        f"{s.batch_size}: {epochs} epochs made {batches * epochs} optimizer steps, and the model fits "
                        f"only UA {fit['train_ua_eval']:.2f} of its own training speakers; a linear probe on the same "
                        f"features reaches {score:+.2f} more"
                        + (" on the validation speakers, recorded as the training audio was" if where else "")}


def _curve(labels: np.ndarray, preds: dict[float, np.ndarray], C: int, options) -> dict:
    """UA at each share of the training data, the last doubling's gain with its bootstrap interval, and whether the
    curve still rises."""
    curve = {s: S.ua(labels, p, C) for s, p in preds.items()}

    def last_doubling(ix):
        return S.ua(labels[ix], preds[1.0][ix], C) - S.ua(labels[ix], preds[0.5][ix], C)

    return {"ua": {str(s): v for s, v in sorted(curve.items())}, "gain": curve[1.0] - curve[0.5],
            "rising": curve[0.5] - curve[0.25] >= RISING and curve[1.0] > curve[0.5],
            "interval": S.bootstrap_interval(last_doubling, len(labels), options.bootstrap, options.seed)}
