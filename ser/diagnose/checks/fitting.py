"""Under- and overfitting, judged in eval mode: the model's UA on its own training utterances (whole
files, no dropout or augmentation, the tested weights) against the test speakers, the validation
curves, and the features check's probe (which says how much UA the features hold that the model
does not reach: the UA at stake)."""

from __future__ import annotations

import math

import numpy as np

from ser.diagnose import figures as F
from ser.diagnose.check import REPORT_ABOVE, Check
from ser.diagnose.checks.features import Features
from ser.diagnose.evidence import Finding
from ser.diagnose.fitting import fitting_evidence, loss_trend
from ser.stats import ua

FITS = 0.85  # training UA (eval mode) below which the model does not fit what it was given
GAP = 0.2  # a fitting gap above this is memorising, not learning (set on the fault-injection benchmark)
# Memorising by the loss curves, whatever the gap: validation loss this many nats above its minimum at the end, in
# every fold, while training loss still fell by LATE_DROP (a share) over the last quarter of epochs. Weak features
# keep a memorising model's training UA low (4 MFCCs under a wide LSTM: gap 0.12, validation loss up 1.8 nats);
# on the benchmarks the injected overfitting rose 1.3-3.9 nats in every fold, nothing else above 0.97 in every fold.
LOSS_RISE = 1.0
LATE_DROP = 0.1
# Optimizer steps under which a from-scratch encoder that does not fit its own training utterances has simply not
# trained: with fewer batches an epoch than epochs, the training set is what is short (a recipe's epochs over a
# few batches), not the epoch budget. Set on the fault-injection benchmarks' from-scratch recipes (a quarter and a
# tenth of the data: 10 to 40 steps; controls 70 or more; too few epochs: 9 to 13 batches an epoch over 2 or 3
# epochs): top-1 is the same for any value from 45 to 100 (class imbalance, 50-60 steps, explains the shortage).
FEW_STEPS = 60


class Fitting(Check):
    name, title = "fitting", "Fitting"
    causes = ("overfitting", "underfitting")
    requires = (Features,)  # the probe on the same features: the UA at stake

    def fold_columns(self, fold, ev):
        train = (fold.extra.get(self.name) or {}).get("train_ua", math.nan)
        return {"gap": ("fitting gap", train - ua(fold.labels, fold.probs.argmax(1), ev.C))}

    def per_fold(self, view):
        return {"train_ua": view.ua_on("train")} if view.fold.train else None

    def measure(self, ev, run):
        m = {}
        measured = [(f, x) for f, x in zip(ev.folds, ev.per_fold(self.name)) if x]
        if measured:
            train = float(np.mean([x["train_ua"] for _, x in measured]))
            test = float(np.mean([ua(f.labels, f.probs.argmax(1), ev.C) for f, _ in measured]))
            m |= {"train_ua_eval": train, "test_ua_folds": test, "gap": train - test}
        fits = {name: fitting_evidence(c) for name, c in ev.curves.items()}
        usable = [f for f in fits.values() if f]
        if usable:
            rose = sum(f["val_loss_rose"] for f in usable)
            for key in usable[0]:
                values = [f[key] for f in usable if f[key] is not None]
                if not values:
                    m[key] = None
                elif isinstance(values[0], bool):  # most folds say so
                    m[key] = sum(values) > len(values) / 2
                else:
                    m[key] = float(np.mean(values)) if isinstance(values[0], float) else int(round(np.mean(values)))
            m |= {"val_loss_rose": rose > len(usable) / 2, "val_loss_rose_folds": rose, "curve_folds": len(usable)}
        m["per_fold"] = {name: f for name, f in fits.items() if f}
        features = ev.of(Features)
        if "capacity" in features:
            m |= {"capacity": features["capacity"], "capacity_interval": features["capacity_interval"]}
        return m

    def judge(self, m, ev):
        if "gap" not in m:
            return []
        # The UA at stake: what a linear probe on the same features reaches beyond the model; without
        # probes, a rough stand-in from the training fit.
        probe = "capacity" in m
        out = []
        if m["gap"] > GAP or (probe and self._memorising(m)):
            score = m["capacity"] if probe else 0.25 * (m["gap"] - GAP)
            trend = f"; {loss_trend(m)[0].lower()}{loss_trend(m)[1:-1]}" if m.get("val_loss_rose") else ""
            if m["gap"] <= GAP:
                trend += (f" in every fold while training loss still fell {100 * m['train_loss_late_drop']:.0f} % over "
                          "the last quarter of epochs: memorising, though the weak fit keeps the gap small")
            if score >= REPORT_ABOVE:
                out.append(Finding("overfitting", "overfitting", score,
                                   f"UA {m['train_ua_eval']:.2f} on the training speakers against {m['test_ua_folds']:.2f} "
                                   f"on the test speakers (both in eval mode){trend}"
                                   + (f"; a linear probe on the same features reaches {score:+.2f} more" if probe else ""),
                                   _overfit_advice(ev), interval=m.get("capacity_interval") if probe else None,
                                   explained_by=("too_little_data", "imbalance", "label_noise")))
        elif (score := self.underfit(m, ev)) is not None:
            after = f" after {m['epochs']} epochs" if "epochs" in m else ""
            if score >= REPORT_ABOVE:
                out.append(Finding("underfitting", "underfitting", score,
                                   f"UA only {m['train_ua_eval']:.2f} on the training speakers themselves (eval mode){after}"
                                   + (f"; a linear probe on the same features reaches {score:+.2f} more" if probe else ""),
                                   _underfit_advice(ev, m), interval=m.get("capacity_interval") if probe else None,
                                   # the training UA is a mean recall: rare classes never learnt, labels that
                                   # contradict each other, a few steps over little data all keep it low; over
                                   # short epochs a learning curve rises on its steps, not its data
                                   explained_by=("weak_features", "imbalance", "label_noise")
                                   + (() if self._short_epochs(m, ev) else ("too_little_data",))))
        return out

    @classmethod
    def underfit(cls, m: dict, ev) -> float | None:
        """The UA at stake when the model does not fit its own training utterances (and neither memorising nor
        weak features account for it): the probe's lead on the same features, or without probes the training
        UA's shortfall; None when it fits."""
        if "gap" not in m or m["train_ua_eval"] >= FITS or m["gap"] > GAP or cls._memorising(m) \
                or cls._features_explain(m, ev):
            return None
        return m["capacity"] if "capacity" in m else FITS - m["train_ua_eval"]

    @staticmethod
    def _short_epochs(m, ev) -> bool:
        """A from-scratch run of fewer than ``FEW_STEPS`` optimizer steps with at least as many batches an epoch as
        epochs: the epochs are what is short, and the learning curve, retrained with the same epochs on less data,
        makes fewer steps at every share; its rise then measures steps as much as data (the mirror of
        ``data_size._too_few_steps``), so too little data does not explain the underfitting."""
        s, n_train = ev.settings, (ev.measured.get("data_size") or {}).get("n_train", 0)
        epochs = m.get("epochs") or s.max_epochs
        if s.pretrained or not (n_train and s.batch_size and epochs):
            return False
        batches = int(math.ceil(n_train / s.batch_size))
        return batches * epochs < FEW_STEPS and batches >= epochs

    @staticmethod
    def _memorising(m) -> bool:
        """The loss curves say the model memorises: validation loss up ``LOSS_RISE`` nats from its minimum in every
        fold while training loss still falls (``LATE_DROP``)."""
        return (m.get("val_loss_rise", 0) >= LOSS_RISE and m.get("curve_folds", 0) > 0
                and m.get("val_loss_rose_folds") == m.get("curve_folds")
                and (m.get("train_loss_late_drop") or 0) >= LATE_DROP)

    @staticmethod
    def _features_explain(m, ev) -> bool:
        """Training converged (its curves no longer improving) short of fitting its own training data, on features a
        reference set beats beyond doubt: the input, not the training, limits the fit, and training longer (the
        underfitting advice) would not help. A run still improving is underfit whatever its features: weak features
        rank before it only by accounting for the probe's lead (``report.explains``: weak by 0.05 does not explain
        a probe 0.35 ahead)."""
        features = ev.of(Features)
        weak, interval = features.get("weak", 0), features.get("weak_interval") or (0, 0)
        return weak >= REPORT_ABOVE and interval[0] > 0 and m.get("still_improving") is False

    def section(self, m, ev):
        L = ["## Fitting", ""]
        folds = " (means over folds)" if len(ev.folds) > 1 else ""
        if "gap" in m:
            L += [f"With the tested weights in eval mode (whole utterances, no dropout or augmentation){folds}: UA "
                  f"{m['train_ua_eval']:.3f} on the training speakers against {m['test_ua_folds']:.3f} on the test "
                  f"speakers, a fitting gap of **{m['gap']:.3f}**.", ""]
        if "capacity" in m:
            L += [f"A linear probe on the same features scores {m['capacity']:+.3f} UA against the model (Features).", ""]
        if "epochs" in m:
            rose = (f" It rose in {m['val_loss_rose_folds']} of {m['curve_folds']} folds."
                    if m["curve_folds"] > 1 and m["val_loss_rose_folds"] else "")
            L += [f"The validation curve{folds} peaked at epoch {m['best_epoch']} of {m['epochs']} (UA {m['val_ua']:.3f}; "
                  f"{m['final_val_ua']:.3f} at the last epoch). " + loss_trend(m) + rose, "",
                  "The training curve in the figure is measured in train mode (dropout, random crops, augmentation), "
                  "so it can sit below validation without meaning underfitting.", "", "![fitting](fitting.png)", ""]
        elif not any(ev.curves.values()):
            L += ["No training curves found (the run's tensorboard/ folder is missing).", ""]
        return L

    def figures(self, m, ev):
        usable = [c for c in ev.curves.values() if c.get("val/ua") or c.get("train/loss")]
        if not usable:
            return {}
        keys = ("train/ua", "val/ua", "train/loss", "val/loss")
        mean = {key: _mean_curve([c.get(key, []) for c in usable]) for key in keys}
        return {"fitting.png": F.fitting(mean, mean_of_folds=len(usable) > 1)}


def _mean_curve(curves: list[list[float]]) -> list[float]:
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0).tolist() if n else []


def _overfit_advice(ev) -> list[str]:
    options = ev.settings.model_options
    advice = ["module.head_dropout=0.5", "optimizer.weight_decay=0.05", "callbacks=average"]
    if options.get("dropout", 1) < 0.3:
        advice.append("model.dropout=0.3")
    return advice + ([] if ev.settings.label_smoothing else ["loss.label_smoothing=0.1"]) + ["augment=specaugment"]


def _underfit_advice(ev, m) -> list[str]:
    s = ev.settings
    advice = [f"trainer.max_epochs={2 * s.max_epochs}"] if s.max_epochs else []
    if s.lr and s.default_lr and s.lr < s.default_lr:
        advice.append(f"optimizer.lr={s.default_lr:.0e}")  # a learning rate turned down: back to the optimizer's own
    elif s.lr:
        advice.append(f"optimizer.lr={min(3 * s.lr, 3e-3):.0e}")
    for key in ("hidden", "channels"):
        if key in s.model_options and s.model_options[key]:
            advice.append(f"model.{key}={2 * int(s.model_options[key])}")
            break
    return advice
