"""The model's utterance embeddings (what the head reads): do test utterances land among their emotion, or among
their own speaker (or corpus)?

Each fold's model has its own embedding space, so neighbours are looked for within a fold, among the fold's test
utterances and a reference sample of the utterances it trained and validated on (its validation utterances first,
then training ones: as many as it tests, at least ``REFERENCE``): for each test utterance, the share of its ``K``
nearest neighbours (cosine, the fold's embeddings standardised) that share its emotion, its speaker, its corpus,
each against the share that random neighbours from the same pool would give (chance). Each grouping's strength is
how far its share goes from chance towards all alike, ``(share - chance) / (1 - chance)`` (0: no grouping, 1: every
neighbour alike; unlike the lift ``share / chance`` it does not grow with the number of groups, so a two-corpus
pool and a seven-class one compare). Speaker grouping minus emotion grouping is the number behind the map: test utterances
that sit beside their own speaker's other utterances rather than beside the same emotion in other voices show an
embedding that has learnt who speaks. The reference makes the number measurable where a fold tests one speaker
(leave-one-speaker-out) or one corpus (``split=corpus``: do the held-out corpus's utterances gather apart from the
training corpora's?). The reference's emotion grouping was fitted
on (training) or selected on (validation); only test utterances are scored.

The map is the fold with the most test speakers, in two PCA dimensions of test and reference together
(``umap-learn`` is not a dependency; PCA keeps distances' large scale honest and is exact), coloured four ways: the
true class, the predicted class, the speaker, and the corpus (where the pool holds several) or whether the
prediction was right; test utterances drawn full, the reference faint, errors as crosses.
"""

from __future__ import annotations

import numpy as np

from ser.diagnose import figures as F
from ser.diagnose.check import Check
from ser.models.pipeline import predict

K = 5  # neighbours per utterance
REFERENCE = 200  # at least this many of the fold's validation (then training) utterances, and as many as it tests


class Embedding(Check):
    name, title = "embedding", "Embedding"

    def per_fold(self, view):
        dm, fold = view.dm, view.fold
        if len(fold.test) < 2 * K:
            return None
        got = predict(view.model, dm.loader(fold.test), embeddings=True)
        row = {i: k for k, i in enumerate(view.result.index)}
        order = np.argsort([row[fold.test[i]] for i in got.index])  # the fold result's row order
        index = [fold.test[got.index[k]] for k in order]  # ``index``: positions in the loader's list
        out = {"embeddings": got.embeddings.numpy()[order], "corpus": self._corpora(dm, index)}
        reference = _reference(fold, max(REFERENCE, len(fold.test)), view.options.seed)
        if reference:
            ref = predict(view.model, dm.loader(reference), embeddings=True)
            at = [reference[i] for i in ref.index]
            out["reference"] = {"embeddings": ref.embeddings.numpy(), "labels": ref.labels.numpy(),
                                "preds": ref.logits.argmax(1).numpy(),
                                "speakers": [str(dm.corpus.utterances[i].speaker) for i in at],
                                "corpus": self._corpora(dm, at)}
        return out

    @staticmethod
    def _corpora(dm, index) -> list[str]:
        return [dm.corpus.corpus_of(dm.corpus.utterances[i]) for i in index]

    def measure(self, ev, run):
        parts = [(f, _pool(f, x)) for f, x in zip(ev.folds, ev.per_fold(self.name)) if x]
        if not parts:
            return {"skipped": f"no fold with {2 * K} test utterances or more"}
        purity = {"emotion": [], "speaker": [], "corpus": []}
        for _, p in parts:
            Z, queries = _standardised(p["embeddings"]), np.flatnonzero(p["test"])
            for key in purity:
                g = np.asarray(p[key])
                if len(set(g.tolist())) > 1:
                    purity[key].append(_purity(Z, g, queries) + (len(queries),))
        m = {key: _pooled(v) for key, v in purity.items() if v}
        m["reference"] = int(sum(len(p["test"]) - int(np.sum(p["test"])) for _, p in parts))
        f, p = max(parts, key=lambda fp: (len(set(fp[0].speakers)), len(fp[0].labels)))
        xy = _pca2(_standardised(p["embeddings"]))
        names = ev.class_names
        m["map"] = {"fold": f.fold, "x": xy[:, 0].round(3).tolist(), "y": xy[:, 1].round(3).tolist(),
                    "true": [names[int(c)] for c in p["emotion"]], "predicted": [names[int(c)] for c in p["predicted"]],
                    "speaker": list(p["speaker"]), "corpus": list(p["corpus"]), "test": [bool(t) for t in p["test"]]}
        for other in ("speaker", "corpus"):
            if other in m and "emotion" in m:
                m[f"{other}_over_emotion"] = m[other]["strength"] - m["emotion"]["strength"]
        return m

    def section(self, m, ev):
        L = ["## Embedding", ""]
        if "skipped" in m:
            return L + [f"Not measured: {m['skipped']}.", ""]
        L += [f"The model's utterance embeddings (the head's input): for each test utterance, the share of its {K} "
              f"nearest neighbours within its fold (among the fold's test utterances and {m['reference']} of its "
              "validation and training utterances, over all folds) that share its group, against chance (random "
              "neighbours from the same pool):",
              "", "| grouped by | neighbours alike | chance | lift | strength |", "|---|---|---|---|---|"]
        L += [f"| {key} | {m[key]['share']:.3f} | {m[key]['chance']:.3f} | {m[key]['lift']:.2f}x | "
              f"{m[key]['strength']:.3f} |" for key in ("emotion", "speaker", "corpus") if key in m]
        for other in ("speaker", "corpus"):
            if f"{other}_over_emotion" in m:
                d = m[f"{other}_over_emotion"]
                L += ["", f"Strength, (alike - chance) / (1 - chance): the embedding groups test utterances by {other} "
                      f"{abs(d):.3f} {'more' if d > 0 else 'less'} than by emotion"
                      + (f": it has learnt which {other} it hears." if d > 0 else ".")]
        if "speaker" not in m:
            L += ["", "Every fold's pool holds one speaker: speaker grouping is not measurable here."]
        L += ["", f"The map: fold {m['map']['fold']} (the most test speakers), two PCA dimensions; test utterances "
              "full, the reference faint, errors marked x.", "", "![embedding](embedding.png)", ""]
        return L

    def figures(self, m, ev):
        if "skipped" in m:
            return {}
        mp = m["map"]
        wrong = [t != p for t, p in zip(mp["true"], mp["predicted"])]
        fourth = ("corpus", mp["corpus"]) if len(set(mp["corpus"])) > 1 else \
            ("right or wrong", ["wrong" if w else "right" for w in wrong])
        colourings = {"true class": mp["true"], "predicted class": mp["predicted"], "speaker": mp["speaker"],
                      fourth[0]: fourth[1]}
        return {"embedding.png": F.embedding_map(mp["x"], mp["y"], colourings, wrong, mp.get("test"))}


def grouping(ev, other: str) -> str:
    """Evidence for the speaker-variability and corpus-shift findings: how much more the embedding groups test
    utterances by ``other`` (``speaker`` or ``corpus``) than by emotion, where it does ('' otherwise)."""
    d = (ev.measured.get("embedding") or {}).get(f"{other}_over_emotion")
    if d is None or not d > 0:
        return ""
    m = ev.measured["embedding"]
    return (f"; the embedding gathers test utterances by {other} (strength {m[other]['strength']:.2f}) more than by "
            f"emotion ({m['emotion']['strength']:.2f})")


def _reference(fold, n: int, seed: int) -> list[int]:
    """Up to ``n`` of the fold's validation utterances, then training ones (seeded draws)."""
    rng = np.random.default_rng(seed)
    val = [int(i) for i in rng.permutation(fold.val)[:n]] if fold.val else []
    rest = n - len(val)
    train = [int(i) for i in rng.permutation(fold.train)[:rest]] if fold.train and rest > 0 else []
    return sorted(val + train)


def _pool(f, x: dict) -> dict:
    """A fold's test rows (the fold result's order) then its reference rows: embeddings, groups, test flags."""
    pool = {"embeddings": x["embeddings"], "emotion": np.asarray(f.labels), "predicted": f.probs.argmax(1),
            "speaker": [str(s) for s in f.speakers], "corpus": list(x["corpus"]), "test": [True] * len(f.labels)}
    ref = x.get("reference")
    if ref:
        pool = {"embeddings": np.concatenate([pool["embeddings"], ref["embeddings"]]),
                "emotion": np.concatenate([pool["emotion"], ref["labels"]]),
                "predicted": np.concatenate([pool["predicted"], ref["preds"]]),
                "speaker": pool["speaker"] + list(ref["speakers"]), "corpus": pool["corpus"] + list(ref["corpus"]),
                "test": pool["test"] + [False] * len(ref["labels"])}
    return pool


def _standardised(Z: np.ndarray) -> np.ndarray:
    Z = (Z - Z.mean(0)) / (Z.std(0) + 1e-8)
    return Z / (np.linalg.norm(Z, axis=1, keepdims=True) + 1e-8)


def _purity(Z: np.ndarray, groups: np.ndarray, queries: np.ndarray | None = None) -> tuple[float, float]:
    """(share of the ``queries`` rows' K nearest neighbours (among all rows) in their group, the same share for
    random neighbours); every row is a query by default."""
    queries = np.arange(len(Z)) if queries is None else np.asarray(queries)
    sim = Z[queries] @ Z.T
    sim[np.arange(len(queries)), queries] = -np.inf
    k = min(K, len(Z) - 1)
    near = np.argsort(-sim, axis=1)[:, :k]
    share = float((groups[near] == groups[queries][:, None]).mean())
    counts = {g: int((groups == g).sum()) for g in set(groups.tolist())}
    chance = float(np.mean([(counts[g] - 1) / (len(groups) - 1) for g in groups[queries].tolist()]))
    return share, chance


def _pooled(values: list[tuple[float, float, int]]) -> dict:
    w = np.array([n for _, _, n in values], float)
    share, chance = float(np.average([s for s, _, _ in values], weights=w)), \
        float(np.average([c for _, c, _ in values], weights=w))
    return {"share": share, "chance": chance, "lift": share / chance if chance > 0 else float("nan"),
            "strength": (share - chance) / (1 - chance) if chance < 1 else float("nan")}


def _pca2(Z: np.ndarray) -> np.ndarray:
    Z = Z - Z.mean(0)
    _, _, vt = np.linalg.svd(Z, full_matrices=False)
    return Z @ vt[:2].T
