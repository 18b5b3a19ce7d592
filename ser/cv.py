"""Cross-validation summaries: per-fold metrics, mean and std, pooled confusion and recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser import rundir, stats

HEADLINE = ("test/ua", "test/wa", "test/macro_f1")


def summarize(folds: list[dict], class_names: list[str]) -> dict:
    """Summarise fold results.

    Args:
        folds: one dict per fold with ``fold``, ``test_speakers``, ``metrics`` (the fold's test
            metrics) and ``confusion`` (C x C counts, rows = true class).
        class_names: the class of each confusion row.

    Returns a dict with ``folds`` (fold, test speakers, headline metrics), ``mean`` and ``std``
    (sample std, ddof=1, over folds; 0 for one fold) of every test metric, and ``pooled``: the
    summed confusion matrix with its per-class recall, UA and WA over all test utterances.
    """
    if not folds:
        raise ValueError("no folds to summarise")
    keys = sorted(set.intersection(*(set(f["metrics"]) for f in folds)))
    table = {k: np.array([f["metrics"][k] for f in folds], dtype=float) for k in keys}
    ddof = 1 if len(folds) > 1 else 0
    confusion = np.sum([np.asarray(f["confusion"], dtype=np.int64) for f in folds], axis=0)
    pooled = stats.scores(confusion)
    return {
        "folds": [
            {"fold": f["fold"], "test_speakers": f["test_speakers"], "n_test": int(np.sum(f["confusion"]))}
            | ({"test_corpora": f["test_corpora"]} if f.get("test_corpora") else {})
            | {k: float(f["metrics"][k]) for k in HEADLINE}
            for f in folds
        ],
        "mean": {k: float(v.mean()) for k, v in table.items()},
        "std": {k: float(v.std(ddof=ddof)) for k, v in table.items()},
        "pooled": {
            "class_names": list(class_names),
            "confusion_matrix": confusion.tolist(),
            "recall": dict(zip(class_names, pooled["recall"].round(6).tolist())),
            "ua": pooled["ua"],
            "wa": pooled["wa"],
        },
    }


def to_markdown(summary: dict, title: str = "Cross-validation") -> str:
    """The summary as Markdown tables."""
    lines = [f"# {title}", "", f"{len(summary['folds'])} folds; mean ± std (ddof=1) over folds.", ""]
    lines += ["| metric | mean | std |", "|---|---|---|"]
    lines += [f"| {k} | {summary['mean'][k]:.4f} | {summary['std'][k]:.4f} |" for k in HEADLINE]
    by_corpus = all(f.get("test_corpora") for f in summary["folds"])  # leave-one-corpus-out
    held_out = "held-out corpus" if by_corpus else "test speakers"
    lines += ["", "## Folds", "", f"| fold | {held_out} | n | UA | WA | macro-F1 |", "|---|---|---|---|---|---|"]
    for f in summary["folds"]:
        speakers = ", ".join(map(str, f["test_corpora"] if by_corpus else f["test_speakers"]))
        scores = " | ".join(f"{f[k]:.4f}" for k in HEADLINE)
        lines.append(f"| {f['fold']} | {speakers} | {f['n_test']} | {scores} |")
    pooled = summary["pooled"]
    names = pooled["class_names"]
    lines += ["", "## Pooled over all folds", "", f"UA {pooled['ua']:.4f}, WA {pooled['wa']:.4f}", ""]
    lines += ["| class | recall |", "|---|---|"] + [f"| {c} | {pooled['recall'][c]:.4f} |" for c in names]
    lines += ["", "Confusion matrix (rows true, columns predicted):", "", "| true \\ pred | " + " | ".join(names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    lines += [f"| {c} | " + " | ".join(str(v) for v in row) + " |" for c, row in zip(names, pooled["confusion_matrix"])]
    return "\n".join(lines) + "\n"


def write_summary(run_dir: Path, summary: dict, title: str = "Cross-validation") -> None:
    rundir.write_json(run_dir / rundir.CV_SUMMARY, summary)
    rundir.write_text(run_dir / rundir.CV_MARKDOWN, to_markdown(summary, title))
