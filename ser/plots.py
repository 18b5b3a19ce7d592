"""Figures shared by TensorBoard logging and the diagnosis report (matplotlib, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_axes(ax, shade, labels, class_names: list[str], title: str, fontsize: float = 10):
    """Draw one confusion matrix on ``ax``: cells shaded by ``shade`` (0..1), written with ``labels``
    (strings, C x C); rows are the true class. Returns the image (for a colour bar)."""
    im = ax.imshow(shade, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            color = "white" if shade[i, j] > 0.5 else "black"
            ax.text(j, i, labels[i][j], ha="center", va="center", color=color, fontsize=fontsize)
    return im


def confusion_figure(counts, class_names: list[str], title: str = "confusion matrix"):
    """Row-normalised confusion matrix (rows = true class) with the counts written in each cell."""
    counts = np.asarray(counts.cpu() if hasattr(counts, "cpu") else counts, dtype=float)  # a tensor may live on a GPU
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = confusion_axes(ax, rates, [[f"{int(c)}" for c in row] for row in counts], class_names, title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    return fig
