"""The model's utterance embeddings (what the head reads) of the test utterances: do they group utterances by
speaker (or corpus) more than by emotion?

Each fold's model has its own embedding space, so neighbours are looked for within a fold: the share of an
utterance's ``K`` nearest test neighbours (cosine, each fold's embeddings standardised) that share its speaker,
its corpus, its emotion, each against the share random neighbours of the fold would give (chance). The lift
above chance, speaker against emotion, is the number behind the map: an embedding that groups by speaker
far more than by emotion has learnt who speaks. A fold with one test speaker (leave-one-speaker-out) cannot
show speaker grouping and is left out of that number. The map is the fold with the most test speakers, in two
PCA dimensions (``umap-learn`` is not a dependency; PCA keeps distances' large scale honest and is exact),
coloured four ways: the true class, the predicted class, the speaker, and the corpus (``data=multi``) or
whether the prediction was right.
"""

from __future__ import annotations

import numpy as np

from ser.diagnose import figures as F
from ser.diagnose.check import Check
from ser.models.pipeline import predict

K = 5  # neighbours per utterance


class Embedding(Check):
    name, title = "embedding", "Embedding"

    def per_fold(self, view):
        dm, fold = view.dm, view.fold
        if len(fold.test) < 2 * K:
            return None
        got = predict(view.model, dm.loader(fold.test), embeddings=True)
        row = {i: k for k, i in enumerate(view.result.index)}
        order = np.argsort([row[fold.test[i]] for i in got.index])  # the fold result's row order
        corpus = [dm.corpus.corpus_of(dm.corpus.utterances[fold.test[i]]) for i in got.index]
        return {"embeddings": got.embeddings.numpy()[order], "corpus": [corpus[k] for k in order]}

    def measure(self, ev, run):
        parts = [(f, x) for f, x in zip(ev.folds, ev.per_fold(self.name)) if x]
        if not parts:
            return {"skipped": f"no fold with {2 * K} test utterances or more"}
        purity = {"emotion": [], "speaker": [], "corpus": []}
        for f, x in parts:
            Z = _standardised(x["embeddings"])
            groups = {"emotion": f.labels, "speaker": np.array(f.speakers), "corpus": np.array(x["corpus"])}
            for key, g in groups.items():
                if len(set(g.tolist())) > 1:
                    purity[key].append(_purity(Z, g) + (len(g),))
        m = {key: _pooled(v) for key, v in purity.items() if v}
        f, x = max(parts, key=lambda p: (len(set(p[0].speakers)), len(p[0].labels)))
        xy = _pca2(_standardised(x["embeddings"]))
        m["map"] = {"fold": f.fold, "x": xy[:, 0].round(3).tolist(), "y": xy[:, 1].round(3).tolist(),
                    "true": [ev.class_names[int(c)] for c in f.labels],
                    "predicted": [ev.class_names[int(c)] for c in f.probs.argmax(1)],
                    "speaker": [str(s) for s in f.speakers], "corpus": list(x["corpus"])}
        if "speaker" in m and "emotion" in m:
            m["speaker_over_emotion"] = m["speaker"]["lift"] - m["emotion"]["lift"]
        if "corpus" in m and "emotion" in m:
            m["corpus_over_emotion"] = m["corpus"]["lift"] - m["emotion"]["lift"]
        return m

    def section(self, m, ev):
        L = ["## Embedding", ""]
        if "skipped" in m:
            return L + [f"Not measured: {m['skipped']}.", ""]
        L += [f"The model's utterance embeddings (the head's input) of the test utterances: the share of each one's "
              f"{K} nearest neighbours (within its fold) that share its group, against chance (random neighbours):",
              "", "| grouped by | neighbours alike | chance | lift |", "|---|---|---|---|"]
        L += [f"| {key} | {m[key]['share']:.3f} | {m[key]['chance']:.3f} | {m[key]['lift']:.2f}x |"
              for key in ("emotion", "speaker", "corpus") if key in m]
        for other in ("speaker", "corpus"):
            if f"{other}_over_emotion" in m:
                d = m[f"{other}_over_emotion"]
                L += ["", f"The embedding groups utterances by {other} {abs(d):.2f}x {'more' if d > 0 else 'less'} above "
                      "chance than by emotion" + (f": it has learnt which {other} it hears." if d > 0 else ".")]
        if "speaker" not in m:
            L += ["", "Every fold tests one speaker: speaker grouping is not measurable here."]
        L += ["", f"The map: fold {m['map']['fold']} (the most test speakers), two PCA dimensions; errors marked x.", "",
              "![embedding](embedding.png)", ""]
        return L

    def figures(self, m, ev):
        if "skipped" in m:
            return {}
        mp = m["map"]
        wrong = [t != p for t, p in zip(mp["true"], mp["predicted"])]
        fourth = ("corpus", mp["corpus"]) if len(set(mp["corpus"])) > 1 else \
            ("right or wrong", ["wrong" if w else "right" for w in wrong])
        return {"embedding.png": F.embedding_map(mp["x"], mp["y"], {"true class": mp["true"],
                                                                    "predicted class": mp["predicted"],
                                                                    "speaker": mp["speaker"], fourth[0]: fourth[1]},
                                                 wrong)}


def _standardised(Z: np.ndarray) -> np.ndarray:
    Z = (Z - Z.mean(0)) / (Z.std(0) + 1e-8)
    return Z / (np.linalg.norm(Z, axis=1, keepdims=True) + 1e-8)


def _purity(Z: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """(share of each row's K nearest neighbours in its group, the same share for random neighbours)."""
    sim = Z @ Z.T
    np.fill_diagonal(sim, -np.inf)
    k = min(K, len(Z) - 1)
    near = np.argsort(-sim, axis=1)[:, :k]
    share = float((groups[near] == groups[:, None]).mean())
    counts = {g: int((groups == g).sum()) for g in set(groups.tolist())}
    chance = float(np.mean([(counts[g] - 1) / (len(groups) - 1) for g in groups.tolist()]))
    return share, chance


def _pooled(values: list[tuple[float, float, int]]) -> dict:
    w = np.array([n for _, _, n in values], float)
    share, chance = float(np.average([s for s, _, _ in values], weights=w)), \
        float(np.average([c for _, c, _ in values], weights=w))
    return {"share": share, "chance": chance, "lift": share / chance if chance > 0 else float("nan")}


def _pca2(Z: np.ndarray) -> np.ndarray:
    Z = Z - Z.mean(0)
    _, _, vt = np.linalg.svd(Z, full_matrices=False)
    return Z @ vt[:2].T
