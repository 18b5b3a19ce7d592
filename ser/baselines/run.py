"""Every classifier on every fold, with the same splits and summary files as ``train.py``."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from ser.baselines.features import OPENSMILE, frontend_set, opensmile_set
from ser.cli import run_command
from ser.cv import summarize, write_summary
from ser.data.upstream_cache import FeatureStore
from ser.diagnose.analysis import confusion, precision_recall_f1, ua
from ser.inspect import compose_cli

log = logging.getLogger(__name__)
OWN_ARGS = ("classifiers", "out", "normalize", "sets", "features")  # baselines' own options, and features= (sets)
# C grids, searched on the training speakers of each fold (inner speaker-grouped cross-validation).
C_GRIDS = {"svm": (0.1, 1.0, 10.0, 100.0), "logreg": (1e-3, 1e-2, 1e-1, 1.0), "linsvm": (1e-4, 1e-3, 1e-2, 1e-1)}
INNER_FOLDS = 3


def make_classifier(name: str, c: float, seed: int, blocks: list[int] | None = None):
    """Standardisation (each block of columns weighted equally) and a class-balanced classifier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC, LinearSVC

    from ser.baselines.scaling import BlockScaler

    if name == "svm":
        clf = SVC(C=c, kernel="rbf", gamma="scale", class_weight="balanced", random_state=seed)
    elif name == "logreg":
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    elif name == "linsvm":
        clf = LinearSVC(C=c, class_weight="balanced", max_iter=20000, random_state=seed)
    else:
        raise ValueError(f"classifiers: unknown {name!r}; choose from {sorted(C_GRIDS)}")
    return Pipeline([("scale", BlockScaler(blocks)), ("clf", clf)])


def metrics_of(labels: np.ndarray, preds: np.ndarray, class_names: list[str]) -> tuple[dict, list]:
    counts = confusion(labels, preds, len(class_names))
    prf = precision_recall_f1(counts)
    m = {"test/ua": ua(labels, preds, len(class_names)), "test/wa": float((labels == preds).mean()),
         "test/macro_f1": float(prf["f1"][prf["support"] > 0].mean())}
    m |= {f"test/recall/{c}": float(r) for c, r in zip(class_names, prf["recall"])}
    return m, counts.tolist()


def per_speaker(X: np.ndarray, speakers: list[str]) -> np.ndarray:
    """Standardise each speaker's features with that speaker's own mean and std (transductive:
    the test speaker's unlabelled utterances are used)."""
    X = X.copy()
    for spk in sorted(set(speakers)):
        rows = np.array([s == spk for s in speakers])
        X[rows] = (X[rows] - X[rows].mean(0)) / (X[rows].std(0) + 1e-8)
    return X


def fit_fold(name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, blocks: list[int]):
    """The classifier with C chosen by speaker-grouped cross-validation on these (training) rows only;
    returns it refitted on all of them, the C and its inner UA (NaN when there were too few speakers)."""
    from sklearn.model_selection import GridSearchCV, GroupKFold

    speakers = len(set(groups))
    if speakers < 2:
        log.warning("%s: one training speaker, so C cannot be chosen on held-out speakers: C=1", name)
        return make_classifier(name, 1.0, seed, blocks).fit(X, y), 1.0, float("nan")
    search = GridSearchCV(make_classifier(name, 1.0, seed, blocks), {"clf__C": C_GRIDS[name]},
                          cv=GroupKFold(n_splits=min(INNER_FOLDS, speakers)), scoring="balanced_accuracy")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*classes not in y_true")  # a held-out speaker lacking a class
        warnings.filterwarnings("ignore", message=".*(did not converge|Liblinear failed).*")
        search.fit(X, y, groups=groups)
    return search.best_estimator_, float(search.best_params_["clf__C"]), float(search.best_score_)


def parse_sets(value: str | None) -> list[str]:
    """``compare`` or ``[compare,ge2e]`` -> the names; None -> the config's default frontend."""
    if value is None:
        return []
    names = [n.strip() for n in re.sub(r"^\[|\]$", "", value.strip()).split(",") if n.strip()]
    if not names:
        raise ValueError(f"features={value!r}: name a feature set, e.g. features=compare or features=[compare,ge2e]")
    return names


def extractor(sets: list[str], overrides: list[str], dm, store: FeatureStore, cfg=None):
    """``extract(waves=None) -> [(N, D) block per feature set]``: of every utterance of ``dm``, or of
    ``waves``. ``sets`` empty: the frontend of ``cfg.features``."""
    from ser.train import build_frontend

    feature_keys = [o for o in overrides if o.lstrip("+~").startswith("features.")]
    makers = []
    for name in sets or [None]:
        if name in OPENSMILE:
            makers.append(lambda waves, name=name: opensmile_set(name, dm.waves if waves is None else waves,
                                                               dm.sample_rate, store))
            continue
        if name is not None:
            cfg = compose_cli([o for o in overrides if o not in feature_keys] + [f"features={name}"] + feature_keys)
        frontend = build_frontend(cfg)[0].eval()  # unnormalised: the classifier standardises, per fold
        settings = {k: v for k, v in cfg.features.items() if k != "normalize"}
        makers.append(lambda waves, f=frontend, s=settings: frontend_set(f, s, dm, store, waves=waves))

    def extract(waves=None) -> list[np.ndarray]:
        return [make(waves) for make in makers]

    return extract


def fold_matrix(X: np.ndarray, dm, extract, speakers: list[str] | None = None) -> np.ndarray:
    """``X`` as the current fold sees it: the rows of injected test audio (``dm.test_waves``) recomputed,
    then, with ``speakers``, every speaker standardised with their own statistics (``per_speaker``)."""
    if dm.test_waves:
        index = sorted(dm.test_waves)
        X = X.copy()
        X[index] = np.concatenate(extract([dm.test_waves[i] for i in index]), axis=1)
    return per_speaker(X, speakers) if speakers is not None else X


def run(cfg, classifiers: list[str], out: Path, normalize: str = "train", sets: list[str] = (),
        overrides: list[str] = ()) -> dict[str, dict]:
    """Every classifier on every fold; returns classifier -> mean test metrics.

    ``sets``: feature set names (``ser.baselines.features``); none: the frontend of ``cfg.features``.
    ``normalize``: ``train`` standardises features with the training split's statistics (inside
    each classifier's pipeline); ``speaker`` first standardises every speaker with their own
    (transductive; report it separately).
    """
    if normalize not in ("train", "speaker"):
        raise ValueError(f"normalize={normalize!r}: choose train or speaker")
    unknown = sorted(set(classifiers) - set(C_GRIDS))
    if unknown:
        raise ValueError(f"classifiers: unknown {unknown}; choose from {sorted(C_GRIDS)}")
    try:
        import sklearn  # noqa: F401
    except ImportError as err:
        raise ImportError("ser.baselines needs scikit-learn: pip install -e '.[baselines]'") from err
    start = time.monotonic()
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.load()
    store = FeatureStore(Path(cfg.paths.cache_dir) / "baselines")
    extract = extractor(list(sets), list(overrides), dm, store, cfg)
    blocks = extract()
    for name, block in zip(sets, blocks):
        log.info("features=%s: %d columns", name, block.shape[1])
    X = np.concatenate(blocks, axis=1)
    sizes = [b.shape[1] for b in blocks]
    speakers = np.array([u.speaker for u in dm.utterances])
    folds = instantiate(cfg.split).folds(dm.utterances)
    what = "+".join(sets) if sets else cfg.features._target_.rsplit(".", 1)[-1]
    log.info("%d utterances, %d features (%s), %d folds", len(X), X.shape[1], what, len(folds))
    results = {}
    for name in classifiers:
        per_fold = []
        for fold in folds:
            dm.use_fold(fold)  # the split guard, data.exclude, data.train_fraction and inject.* if set
            Xf = fold_matrix(X, dm, extract, list(speakers) if normalize == "speaker" else None)
            y = np.array(dm.targets)  # inject.label_noise: this fold's training labels as given
            train = np.array(sorted(dm.fold.train + dm.fold.val))  # every non-test speaker; C is chosen among them
            clf, c, inner = fit_fold(name, Xf[train], y[train], speakers[train], cfg.seed, sizes)
            metrics, counts = metrics_of(y[dm.fold.test], clf.predict(Xf[dm.fold.test]), dm.class_names)
            metrics["val/ua"] = inner  # the chosen C's UA over held-out training speakers
            fold_dir = out / name / f"fold_{fold.name}"
            fold_dir.mkdir(parents=True, exist_ok=True)
            (fold_dir / "metrics.json").write_text(json.dumps(metrics | {"C": c}, indent=2) + "\n")
            per_fold.append({"fold": fold.name, "test_speakers": fold.test_speakers, "metrics": metrics,
                             "confusion": counts} | ({"test_corpora": fold.test_corpora} if fold.test_corpora else {}))
            log.info("%s fold %s: C=%g test UA %.3f", name, fold.name, c, metrics["test/ua"])
        summary = summarize(per_fold, dm.class_names)
        summary["wall_time_s"] = round(time.monotonic() - start, 1)
        split = cfg.split._target_.rsplit(".", 1)[-1]
        norm = ", per-speaker normalised (transductive)" if normalize == "speaker" else ""
        write_summary(out / name, summary, f"{name} on {what} utterance features{norm}, {split} on {dm.corpus_label}")
        (out / name / "metrics.json").write_text(json.dumps(summary["mean"], indent=2) + "\n")
        results[name] = summary["mean"] | {"std_ua": summary["std"]["test/ua"]}
    return results


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
    # what composes each frontend set's own config (ser.baselines.run.extractor): training's options alone
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
