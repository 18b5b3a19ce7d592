"""Corpus shift (dataset bias): runs tested on a corpus they did not train on. In-domain UA (held-out
speakers of the training corpora) against cross-corpus UA, per class, and how well a classifier on
the model's embeddings tells the corpora apart. The in-domain minus cross-corpus gap is the UA at stake."""

from __future__ import annotations

import math

from ser.diagnose import analysis as A
from ser.diagnose.check import Check
from ser.diagnose.checks.embedding import grouping
from ser.diagnose.evidence import Finding
from ser.models.pipeline import predict

GAP = 0.05  # a cross-corpus loss smaller than this is within what another speaker set would give


class CorpusShift(Check):
    name, title = "corpus_shift", "Corpus shift"
    causes = ("corpus_shift",)

    def verify_metric(self, finding, m):
        return "UA on the held-out corpus", ["test/ua"]

    def absent_by_construction(self, class_counts):
        return True  # a single-corpus run tests on the corpus it trained on

    def per_fold(self, view):
        """For a fold whose test corpora were not trained on: predictions and embeddings (B, D) in-domain
        (validation speakers, else the training utterances) and cross-corpus (the test corpora)."""
        dm, fold = view.dm, view.fold
        corpus = [dm.corpus.corpus_of(u) for u in dm.corpus.utterances]
        trained = sorted({corpus[i] for i in fold.train})
        tested = sorted({corpus[i] for i in fold.test})
        if not all(tested) or set(tested) & set(trained):
            return None
        out = {"train_corpora": trained, "test_corpora": tested, "in_domain_from": "validation" if fold.val else "training"}
        for part, indices in (("in_domain", fold.val or fold.train), ("cross", fold.test)):
            got = predict(view.model, dm.loader(indices), embeddings=True)  # embeddings (N, D): what the head reads
            out[part] = {"labels": got.labels.numpy(), "preds": got.logits.argmax(-1).numpy(),
                         "embeddings": got.embeddings.numpy(), "corpus": [corpus[indices[i]] for i in got.index]}
        return out

    def measure(self, ev, run):
        return A.corpus_shift(ev.per_fold(self.name), ev.class_names, run.options.bootstrap, run.options.seed)

    def judge(self, m, ev):
        if not m or m["gap"] <= GAP:
            return []
        collapsed = [c["class"] for c in m["classes"] if c["verdict"] == "collapses"]
        acc, s = m["corpus_accuracy"], ev.settings
        # Each corpus standardised with its own statistics: transductive (the test corpus's unlabelled audio), so
        # its UA is reported apart; followed on EmoDB <-> a partner corpus (verify), it won where cached channel
        # copies and GE2E level matching did not (experiments/diagnosis/README.md).
        advice = [] if s.corpus_normalized else ["features.normalize=corpus"]
        if s.pretrained and s.corpus_normalized:  # channel variety through the frozen upstream, cached
            advice = [s.more_copies]
        elif not s.pretrained:
            advice += ([] if s.noise_augmented else ["augment=full"]) + ["experiment=pretrained"]
        if len(m["train_corpora"]) > 1:  # several training corpora: none may dominate
            advice.append("loader.balance=corpus")
        return [Finding("corpus_shift", "corpus shift (dataset bias)", m["gap"],
                        f"UA {m['in_domain']['ua']:.2f} in-domain ({', '.join(m['train_corpora'])}) against "
                        f"{m['cross']['ua']:.2f} on {', '.join(m['test_corpora'])}"
                        + (f"; {', '.join(collapsed)} collapse{'s' if len(collapsed) == 1 else ''}" if collapsed else "")
                        + ("" if math.isnan(acc) else f"; a corpus classifier on the embeddings scores {acc:.2f} "
                           f"(chance {m['corpus_chance']:.2f})") + grouping(ev, "corpus"), advice,
                        "features.normalize=corpus is transductive (statistics of the test corpus's unlabelled audio): "
                        "report its UA apart from the run's; without it: more training corpora, channel variety "
                        f"({s.variety})", interval=tuple(m["interval"]) if "interval" in m else None)]

    def section(self, shift, ev):
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
             f"**{shift['cross']['ua']:.3f} cross-corpus** (n={shift['cross']['n']}): a gap of {shift['gap']:+.3f}"
             + (f" (90 % interval {shift['interval'][0]:+.3f} to {shift['interval'][1]:+.3f})." if "interval" in shift
                else "."), "",
             seen, "", "| class | recall in-domain | recall cross-corpus | verdict |", "|---|---|---|---|"]
        L += [f"| {c['class']} | {_f(c['in_domain'])} | {_f(c['cross'])} | {c['verdict']} |" for c in shift["classes"]]
        L += ["", "Transfers: cross-corpus recall at least 70 % of in-domain; collapses: at or below chance. "
              "What helps against corpus shift: per-corpus normalisation (features.normalize=corpus, transductive: "
              "report it separately), channel and noise augmentation (augment=full, augment=noise), training on more "
              "corpora (data.corpora, loader.balance=corpus), a pretrained upstream (experiment=pretrained).", ""]
        return L


def _f(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"
