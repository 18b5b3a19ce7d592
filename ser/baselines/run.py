"""Every classifier on every fold, with the same splits and summary files as ``train.py``."""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from ser import rundir, stats
from ser.baselines.classifiers import C_GRIDS, fit_fold
from ser.build import build_datamodule
from ser.cli import run_command
from ser.cv import summarize, write_summary
from ser.data.upstream_cache import FeatureStore
from ser.feature_sets import OPENSMILE, extractor, fold_matrix

log = logging.getLogger(__name__)
OWN_ARGS = ("classifiers", "out", "normalize", "sets", "features")  # baselines' own options, and features= (sets)


def metrics_of(labels: np.ndarray, preds: np.ndarray, class_names: list[str]) -> tuple[dict, list]:
    """Test metrics as ``train.py`` writes them (``ser.stats.scores``), and the confusion counts."""
    counts = stats.confusion(labels, preds, len(class_names))
    s = stats.scores(counts)
    m = {"test/ua": s["ua"], "test/wa": s["wa"], "test/macro_f1": s["macro_f1"]}
    m |= {f"test/recall/{c}": float(r) for c, r in zip(class_names, s["recall"])}
    return m, counts.tolist()


def parse_sets(value: str | None) -> list[str]:
    """``compare`` or ``[compare,ge2e]`` -> the names; None -> the config's default frontend."""
    if value is None:
        return []
    names = [n.strip() for n in re.sub(r"^\[|\]$", "", value.strip()).split(",") if n.strip()]
    if not names:
        raise ValueError(f"features={value!r}: name a feature set, e.g. features=compare or features=[compare,ge2e]")
    return names


def run(cfg, classifiers: list[str], out: Path, normalize: str = "train", sets: list[str] = (),
        overrides: list[str] = ()) -> dict[str, dict]:
    """Every classifier on every fold; returns classifier -> mean test metrics.

    ``sets``: feature set names (``ser.feature_sets``); none: the frontend of ``cfg.features``.
    ``normalize``: ``train`` standardises features with the training split's statistics (inside
    each classifier's pipeline); ``speaker`` first standardises every speaker with their own
    (transductive; report it separately).
    """
    if normalize not in ("train", "speaker"):
        raise ValueError(f"normalize={normalize!r}: choose train or speaker")
    unknown = sorted(set(classifiers) - set(C_GRIDS))
    if unknown:
        raise ValueError(f"classifiers: unknown {unknown}; choose from {sorted(C_GRIDS)}")
    start = time.monotonic()
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.load()
    extract = extractor(list(sets), list(overrides), dm.corpus, FeatureStore(Path(cfg.paths.cache_dir) / "baselines"), cfg)
    blocks = extract()
    for name, block in zip(sets, blocks):
        log.info("features=%s: %d columns", name, block.shape[1])
    X = np.concatenate(blocks, axis=1)
    folds = instantiate(cfg.split).folds(dm.corpus.utterances)
    what = "+".join(sets) if sets else cfg.features._target_.rsplit(".", 1)[-1]
    log.info("%d utterances, %d features (%s), %d folds", len(X), X.shape[1], what, len(folds))
    results = {}
    for name in classifiers:
        per_fold = [classify_fold(name, fold, dm, X, extract, [b.shape[1] for b in blocks], normalize, cfg.seed,
                                  out / name / f"fold_{fold.name}") for fold in folds]
        summary = summarize(per_fold, dm.corpus.class_names)
        summary["wall_time_s"] = round(time.monotonic() - start, 1)
        split = cfg.split._target_.rsplit(".", 1)[-1]
        norm = ", per-speaker normalised (transductive)" if normalize == "speaker" else ""
        write_summary(out / name, summary, f"{name} on {what} utterance features{norm}, {split} on {dm.corpus.label}")
        rundir.write_json(out / name / rundir.METRICS, summary["mean"])
        results[name] = summary["mean"] | {"std_ua": summary["std"]["test/ua"]}
    return results


def classify_fold(name: str, fold, dm, X: np.ndarray, extract, sizes: list[int], normalize: str, seed: int,
                  folder: Path) -> dict:
    """Classifier ``name`` on one fold (its C chosen on the training speakers), its metrics in ``folder``; returns
    the fold's result as ``ser.cv.summarize`` reads it."""
    speakers = np.array([u.speaker for u in dm.corpus.utterances])
    dm.use_fold(fold)  # the split guard, fold.exclude, fold.train_fraction and inject.* if set
    Xf = fold_matrix(X, dm, extract, list(speakers) if normalize == "speaker" else None)
    y = np.array(dm.targets)  # inject.label_noise: this fold's training labels as given
    train = np.array(sorted(dm.fold.train + dm.fold.val))  # every non-test speaker; C is chosen among them
    clf, c, inner = fit_fold(name, Xf[train], y[train], speakers[train], seed, sizes)
    metrics, counts = metrics_of(y[dm.fold.test], clf.predict(Xf[dm.fold.test]), dm.corpus.class_names)
    metrics["val/ua"] = inner  # the chosen C's UA over held-out training speakers
    rundir.write_json(folder / rundir.METRICS, metrics | {"C": c})
    log.info("%s fold %s: C=%g test UA %.3f", name, fold.name, c, metrics["test/ua"])
    return {"fold": fold.name, "test_speakers": fold.test_speakers, "metrics": metrics,
            "confusion": counts} | ({"test_corpora": fold.test_corpora} if fold.test_corpora else {})


def command_line(argv: list[str]) -> list[str]:
    """The documented short forms as config overrides: ``features=compare`` or ``features=[compare,ge2e]``
    (feature sets, not only conf/features frontends) -> ``sets=[...]`` with ``features=`` the first
    frontend among them; ``classifiers=svm,logreg`` (Hydra would read a sweep) or ``classifiers=svm`` -> a list."""
    out = []
    for item in argv:
        key, sep, value = item.partition("=")
        if sep and key == "features" and (value.startswith("[") or value in OPENSMILE):
            sets = parse_sets(value)
            out.append(f"sets=[{','.join(sets)}]")
            frontends = [s for s in sets if s not in OPENSMILE]
            out += [f"features={frontends[0]}"] if frontends else []
        elif sep and key == "classifiers" and not value.startswith("["):
            out.append(f"classifiers=[{value}]")
        else:
            out.append(item)
    return out


def main(argv: list[str] | None = None) -> dict | int:
    """The mean metrics per classifier when called from Python; from the shell, exit status 2 on a user error."""
    argv = command_line(list(sys.argv[1:] if argv is None else argv))
    # what composes each frontend set's own config (ser.feature_sets.extractor): training's options alone
    overrides = [a for a in argv if a.partition("=")[0].lstrip("+~") not in OWN_ARGS]
    doc = sys.modules["ser.baselines"].__doc__
    return run_command("python -m ser.baselines", doc, "baselines", lambda cfg: baselines(cfg, overrides), argv,
                       groups=["data", "split", "features"],
                       help_cfg=lambda cfg: OmegaConf.masked_copy(cfg, ["sets", "classifiers", "normalize", "out"]))


def baselines(cfg, overrides: list[str] = ()) -> dict:
    out = Path(cfg.out or f"runs/baselines/{time.strftime('%Y-%m-%d/%H-%M-%S')}")
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(cfg, list(cfg.classifiers), out, cfg.normalize, list(cfg.sets or []), list(overrides))
    print("| classifier | UA | ± std | WA | macro-F1 |\n|---|---|---|---|---|")
    for name, m in results.items():
        print(f"| {name} | {m['test/ua']:.3f} | {m['std_ua']:.3f} | {m['test/wa']:.3f} | {m['test/macro_f1']:.3f} |")
    print(f"summaries in {out}/<classifier>/cv_summary.md")
    return results
