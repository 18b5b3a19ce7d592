"""The diagnosis figures (matplotlib, no display); each returns a Figure."""

from __future__ import annotations

import numpy as np

from ser.plots import confusion_axes, plt


def confusion_pair(counts: np.ndarray, names: list[str]):
    """Counts and row-normalised rates side by side."""
    counts = np.asarray(counts, float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 1.0 + 0.55 * len(names)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 2, size))
    for ax, values, title, fmt in ((axes[0], counts, "counts", "{:.0f}"), (axes[1], rates, "row-normalised", "{:.2f}")):
        labels = [[fmt.format(v) for v in row] for row in values]
        confusion_axes(ax, values / max(values.max(), 1e-9), labels, names, title, fontsize=8)
    fig.tight_layout()
    return fig


def bars(groups: dict[str, list[float]], labels: list[str], title: str, ylabel: str, hline: float | None = None):
    """Grouped bars: ``groups`` maps a series name to one value per label."""
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(labels) * max(1, len(groups)) / 2 + 2), 3.5))
    width = 0.8 / len(groups)
    x = np.arange(len(labels))
    for k, (name, values) in enumerate(groups.items()):
        ax.bar(x + (k - (len(groups) - 1) / 2) * width, values, width, label=name)
    if hline is not None:
        ax.axhline(hline, color="gray", linestyle="--", linewidth=1, label="overall")
    ax.set_xticks(x, labels, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def scatter_imbalance(share: list[float], recall: list[float], names: list[str], r: float):
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.scatter(np.array(share) * 100, recall)
    for x, y, n in zip(share, recall, names):
        ax.annotate(n, (100 * x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("share of the training data (%)")
    ax.set_ylabel("test recall")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"recall vs training share (r = {r:.2f})")
    fig.tight_layout()
    return fig


def line(x, series: dict[str, list[float]], title: str, xlabel: str, ylabel: str, invert_x: bool = False):
    fig, ax = plt.subplots(figsize=(4.8, 3.5))
    for name, values in series.items():
        ax.plot(x[: len(values)], values, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if invert_x:
        ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def curve(x, y, title: str, xlabel: str, ylabel: str, logx: bool = False, ticks: list[str] | None = None,
          zero_line: bool = False, label: str | None = None, others: dict[str, list[float]] | None = None):
    """One measured curve over a numeric x (log-scaled with ``logx``, labelled with ``ticks``); ``others``: more
    curves over the same x by name (then a legend, ``label`` naming the first)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(x, y, marker="o", markersize=3, label=label)
    for name, values in (others or {}).items():
        ax.plot(x, values, marker="o", markersize=3, label=name)
    if others:
        ax.legend(fontsize=8)
    if logx:
        ax.set_xscale("log")
    if ticks is not None:
        ax.set_xticks(x, ticks)
    if zero_line:
        ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def fitting(curves: dict[str, list[float]], mean_of_folds: bool = False):
    """UA and loss per epoch, training and validation side by side; epochs from 1, whole-epoch ticks."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    suffix = " (mean of folds)" if mean_of_folds else ""
    for ax, what in zip(axes, ("ua", "loss")):
        for stage, style in (("train", "--"), ("val", "-")):
            values = curves.get(f"{stage}/{what}", [])
            if values:
                label = "train (train mode: dropout, crops)" if stage == "train" else "validation"
                ax.plot(np.arange(1, len(values) + 1), values, style, marker="o", markersize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("UA" if what == "ua" else "cross-entropy")
        ax.set_title(("UA" if what == "ua" else "loss") + suffix)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def reliability(bins: list[dict], ece: float):
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfectly calibrated")
    mids = [(b["low"] + b["high"]) / 2 for b in bins]
    ax.bar(mids, [b["accuracy"] for b in bins], width=0.1, alpha=0.7, edgecolor="black", label="accuracy")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color="C1", label="bins")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability (ECE {ece:.3f})")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def horizontal_bars(values: dict[str, float], title: str, xlabel: str):
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(values) + 1.2))
    names = list(values)
    ax.barh(range(len(names)), [values[n] for n in names])
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def embedding_map(x: list[float], y: list[float], colourings: dict[str, list[str]], wrong: list[bool],
                  test: list[bool] | None = None):
    """The same 2-D points once per colouring (a panel each, its own legend), errors drawn as crosses; where ``test``
    is given, the points outside it (a reference) are drawn small and faint beneath."""
    x, y, wrong = np.asarray(x), np.asarray(y), np.asarray(wrong, bool)
    test = np.ones(len(x), bool) if test is None else np.asarray(test, bool)
    fig, axes = plt.subplots(1, len(colourings), figsize=(4.2 * len(colourings), 4.2), squeeze=False)
    for ax, (title, groups) in zip(axes[0], colourings.items()):
        groups = np.asarray(groups)
        names = sorted(set(groups.tolist()))
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for k, name in enumerate(names):
            at, colour = groups == name, cmap(k % cmap.N)
            ax.scatter(x[at & ~test], y[at & ~test], s=8, color=colour, alpha=0.4, linewidths=0)
            ax.scatter(x[at & test & ~wrong], y[at & test & ~wrong], s=14, color=colour, label=name)
            ax.scatter(x[at & test & wrong], y[at & test & wrong], s=22, color=colour, marker="x")
        ax.set_title(f"by {title}")
        ax.set_xticks([])
        ax.set_yticks([])
        if len(names) <= 12:
            ax.legend(fontsize=7, loc="best", markerscale=0.8)
    fig.tight_layout()
    return fig
