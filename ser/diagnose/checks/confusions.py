"""Confusions: counts, per-class precision/recall/F1, the most confused pairs; "confusable classes"
when one pair takes a large share of a class."""

from __future__ import annotations

import numpy as np

from ser.diagnose import analysis as A
from ser.diagnose import figures as F
from ser.diagnose.check import Check
from ser.diagnose.evidence import Finding

DOMINANT = 0.2  # a pair taking this share of the true class's utterances dominates its errors


class Confusions(Check):
    name, title = "confusions", "Confusions"
    causes = ("confusable_classes",)

    def measure(self, ev, run):
        pairs = []
        for i, j, n, share in A.confused_pairs(ev.confusion):
            which = np.flatnonzero((ev.labels == i) & (ev.preds == j))[:3]
            pairs.append({"true": ev.class_names[i], "predicted": ev.class_names[j], "count": n, "share": share,
                          "examples": [ev.paths[k] for k in which]})
        return {"pairs": pairs, "confusion": ev.confusion.tolist(),
                "precision": ev.prf["precision"].tolist(), "recall": ev.prf["recall"].tolist(),
                "f1": ev.prf["f1"].tolist(), "support": ev.prf["support"].tolist()}

    def judge(self, m, ev):
        if not m["pairs"] or m["pairs"][0]["share"] < DOMINANT:
            return []
        pair = m["pairs"][0]
        # Half the recall this pair takes from its class, in UA: what telling them apart better could win back.
        score = 0.5 * pair["share"] / max(int(ev.present.sum()), 1)
        s = ev.settings
        advice = (["features.deltas=2", "features.spectral=true"] if s.prosody else
                  ["features=logmel_prosody", "features.deltas=2"]) if s.spectral_frontend else []
        return [Finding("confusable_classes", "confusable classes", score,
                        f"{pair['true']} is taken for {pair['predicted']} {pair['count']} times "
                        f"({100 * pair['share']:.0f} % of {pair['true']}); examples under Confusions",
                        advice, "or merge the classes (data.merge) if the corpus's labels overlap")]

    def section(self, m, ev):
        L = ["## Confusions", "", "![confusion](confusion.png)", "", "| class | precision | recall | F1 | support |",
             "|---|---|---|---|---|"]
        L += [f"| {n} | {m['precision'][i]:.3f} | {m['recall'][i]:.3f} | {m['f1'][i]:.3f} | {int(m['support'][i])} |"
              for i, n in enumerate(ev.class_names)]
        L += ["", "![per class](per_class.png)", "", "Most confused pairs (true -> predicted):", "",
              "| true | predicted | count | share of true class | examples |", "|---|---|---|---|---|"]
        for p in m["pairs"]:
            L.append(f"| {p['true']} | {p['predicted']} | {p['count']} | {p['share']:.2f} | "
                     + "<br>".join(f"`{e}`" for e in p["examples"]) + " |")
        return L + [""]

    def figures(self, m, ev):
        return {"confusion.png": F.confusion_pair(np.array(m["confusion"]), ev.class_names),
                "per_class.png": F.bars({"precision": m["precision"], "recall": m["recall"], "F1": m["f1"]},
                                        ev.class_names, "per-class precision, recall, F1", "score", hline=ev.ua)}
