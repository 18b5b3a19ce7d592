"""``python -m ser.baselines [data=... split=... features=...] [classifiers=...] [normalize=...] [out=<dir>]``.

``classifiers=svm,logreg`` (default both); ``normalize=train`` (default) or ``speaker``.

The classical reference: utterance-level functionals of the frontend's features (per row: mean,
standard deviation, 10th/50th/90th percentiles and the mean absolute frame-to-frame delta), then
scikit-learn classifiers (an RBF SVM and logistic regression, both class-balanced, with
standardisation fitted on the training split). Same corpus loading, same speaker-independent
splits and the same summary files as ``train.py`` (``metrics.json`` per fold, ``cv_summary.json``
and ``cv_summary.md``), so deep and classical runs compare side by side. The regularisation ``C``
is chosen per fold on the validation speakers, never the test speaker.

Needs the ``baselines`` extra (scikit-learn).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import open_dict
from tqdm.auto import tqdm

from ser.cv import summarize, write_summary
from ser.diagnose.analysis import confusion, precision_recall_f1, ua
from ser.inspect import compose_cli
from ser.train import build_frontend

log = logging.getLogger(__name__)
OWN_ARGS = ("classifiers", "out", "normalize")
C_GRID = (0.1, 1.0, 10.0)


@torch.no_grad()
def functionals(frontend, waves: list[torch.Tensor], batch: int = 32) -> np.ndarray:
    """(N, 6 F) utterance functionals: per feature row mean, std, p10, p50, p90, mean |delta|."""
    rows = []
    for w in tqdm(waves, desc="functionals", unit="utt", leave=False):
        feats, frames = frontend(w[None], torch.tensor([w.numel()]))
        feats = feats[0, :, : int(frames[0])]  # (F, T)
        q = torch.quantile(feats, torch.tensor([0.1, 0.5, 0.9]), dim=1)  # (3, F)
        delta = (feats[:, 1:] - feats[:, :-1]).abs().mean(1) if feats.shape[1] > 1 else torch.zeros(len(feats))
        rows.append(torch.cat([feats.mean(1), feats.std(1, correction=0), *q, delta]).numpy())
    return np.stack(rows)


def make_classifier(name: str, c: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name == "svm":
        clf = SVC(C=c, kernel="rbf", gamma="scale", class_weight="balanced", random_state=seed)
    elif name == "logreg":
        clf = LogisticRegression(C=c / 10, max_iter=3000, class_weight="balanced")
    else:
        raise ValueError(f"classifiers: unknown {name!r}; choose from svm, logreg")
    return make_pipeline(StandardScaler(), clf)


def metrics_of(labels: np.ndarray, preds: np.ndarray, class_names: list[str]) -> tuple[dict, list]:
    counts = confusion(labels, preds, len(class_names))
    prf = precision_recall_f1(counts)
    m = {"test/ua": ua(labels, preds, len(class_names)), "test/wa": float((labels == preds).mean()),
         "test/macro_f1": float(prf["f1"][prf["support"] > 0].mean())}
    m |= {f"test/recall/{c}": float(r) for c, r in zip(class_names, prf["recall"])}
    return m, counts.tolist()


def per_speaker(X: np.ndarray, speakers: list[str]) -> np.ndarray:
    """Standardise each speaker's functionals with that speaker's own mean and std (transductive:
    the test speaker's unlabelled utterances are used)."""
    X = X.copy()
    for spk in sorted(set(speakers)):
        rows = np.array([s == spk for s in speakers])
        X[rows] = (X[rows] - X[rows].mean(0)) / (X[rows].std(0) + 1e-8)
    return X


def run(cfg, classifiers: list[str], out: Path, normalize: str = "train") -> dict[str, dict]:
    """Every classifier on every fold; returns classifier -> mean test metrics.

    ``normalize``: ``train`` standardises functionals with the training split's statistics (inside
    each classifier's pipeline); ``speaker`` first standardises every speaker with their own
    (transductive; report it separately).
    """
    if normalize not in ("train", "speaker"):
        raise ValueError(f"normalize={normalize!r}: choose train or speaker")
    try:
        import sklearn  # noqa: F401
    except ImportError as err:
        raise ImportError("ser.baselines needs scikit-learn: pip install -e '.[baselines]'") from err
    start = time.monotonic()
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.load()
    frontend = build_frontend(cfg)[0].eval()  # unnormalised: the classifier standardises, per fold
    X = functionals(frontend, dm.waves)
    y = np.array([dm.class_names.index(u.label) for u in dm.utterances])
    if normalize == "speaker":
        X = per_speaker(X, [u.speaker for u in dm.utterances])
    folds = instantiate(cfg.split).folds(dm.utterances)
    log.info("%d utterances, %d functionals each, %d folds", len(y), X.shape[1], len(folds))
    results = {}
    for name in classifiers:
        per_fold = []
        for fold in folds:
            dm.use_fold(fold)  # the split guard, and data.train_fraction if set
            train, val, test = dm.fold.train, dm.fold.val, dm.fold.test
            if val:
                scores = {c: ua(y[val], make_classifier(name, c, cfg.seed).fit(X[train], y[train]).predict(X[val]),
                                len(dm.class_names)) for c in C_GRID}
                best_c = max(C_GRID, key=lambda c: (scores[c], -abs(np.log10(c))))
            else:
                best_c = 1.0
            clf = make_classifier(name, best_c, cfg.seed).fit(X[train], y[train])
            metrics, counts = metrics_of(y[test], clf.predict(X[test]), dm.class_names)
            metrics["val/ua"] = scores[best_c] if val else float("nan")
            fold_dir = out / name / f"fold_{fold.name}"
            fold_dir.mkdir(parents=True, exist_ok=True)
            (fold_dir / "metrics.json").write_text(json.dumps(metrics | {"C": best_c}, indent=2) + "\n")
            per_fold.append({"fold": fold.name, "test_speakers": fold.test_speakers, "metrics": metrics,
                             "confusion": counts})
            log.info("%s fold %s: C=%g test UA %.3f", name, fold.name, best_c, metrics["test/ua"])
        summary = summarize(per_fold, dm.class_names)
        summary["wall_time_s"] = round(time.monotonic() - start, 1)
        split = cfg.split._target_.rsplit(".", 1)[-1]
        norm = ", per-speaker normalised (transductive)" if normalize == "speaker" else ""
        write_summary(out / name, summary, f"{name} on utterance functionals{norm}, {split} on {dm.corpus.name}")
        (out / name / "metrics.json").write_text(json.dumps(summary["mean"], indent=2) + "\n")
        results[name] = summary["mean"] | {"std_ua": summary["std"]["test/ua"]}
    return results


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    own = {k: v for k, _, v in (a.partition("=") for a in argv) if k in OWN_ARGS}
    cfg = compose_cli([a for a in argv if a.partition("=")[0] not in OWN_ARGS])
    out = Path(own.get("out") or f"runs/baselines/{time.strftime('%Y-%m-%d/%H-%M-%S')}")
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    classifiers = [c.strip() for c in own.get("classifiers", "svm,logreg").split(",") if c.strip()]
    results = run(cfg, classifiers, out, own.get("normalize", "train"))
    print("| classifier | UA | ± std | WA | macro-F1 |\n|---|---|---|---|---|")
    for name, m in results.items():
        print(f"| {name} | {m['test/ua']:.3f} | {m['std_ua']:.3f} | {m['test/wa']:.3f} | {m['test/macro_f1']:.3f} |")
    print(f"summaries in {out}/<classifier>/cv_summary.md")
    return results


if __name__ == "__main__":
    main()
