"""The classical classifiers (scikit-learn, the ``baselines`` extra): standardisation that weighs blocks of
columns equally, a class-balanced SVM or logistic regression, and C chosen on held-out training speakers."""

from __future__ import annotations

import logging
import warnings

import numpy as np

try:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC
except ImportError as err:  # an optional extra: say which
    raise ImportError("ser.baselines needs scikit-learn: pip install -e '.[baselines]'") from err

log = logging.getLogger(__name__)
# C grids, searched on the training speakers of each fold (inner speaker-grouped cross-validation).
C_GRIDS = {"svm": (0.1, 1.0, 10.0, 100.0), "logreg": (1e-3, 1e-2, 1e-1, 1.0), "linsvm": (1e-4, 1e-3, 1e-2, 1e-1)}
INNER_FOLDS = 3


class BlockScaler(StandardScaler):
    """A ``StandardScaler``, then each block of columns scaled so every block carries the same total
    variance: with ``features=[compare,ge2e]``, 6373 ComParE columns would otherwise drown 1536 GE2E ones.

    Args:
        blocks: the width of each block, in column order (None or one block: plain standardisation).
    """

    def __init__(self, blocks: list[int] | None = None):
        super().__init__()
        self.blocks = blocks

    def transform(self, X, copy=None):
        X = super().transform(X, copy=copy)
        if self.blocks and len(self.blocks) > 1:
            total = sum(self.blocks)
            X = X * np.concatenate([np.full(n, np.sqrt(total / (len(self.blocks) * n))) for n in self.blocks])
        return X


def make_classifier(name: str, c: float, seed: int, blocks: list[int] | None = None) -> Pipeline:
    """Standardisation (each block of columns weighted equally) and a class-balanced classifier."""
    if name == "svm":
        clf = SVC(C=c, kernel="rbf", gamma="scale", class_weight="balanced", random_state=seed)
    elif name == "logreg":
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    elif name == "linsvm":
        clf = LinearSVC(C=c, class_weight="balanced", max_iter=20000, random_state=seed)
    else:
        raise ValueError(f"classifiers: unknown {name!r}; choose from {sorted(C_GRIDS)}")
    return Pipeline([("scale", BlockScaler(blocks)), ("clf", clf)])


def fit_fold(name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, blocks: list[int]):
    """The classifier with C chosen by speaker-grouped cross-validation on these (training) rows only;
    returns it refitted on all of them, the C and its inner UA (NaN when there were too few speakers)."""
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
