"""Matplotlib figures of the report, each returned as PNG bytes.

Figures are ``matplotlib.figure.Figure`` objects drawn without pyplot, so
library code never switches the backend of a notebook or an application.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, precision_recall_curve

MEMBER, COMBINER = "#4C72B0", "#DD8452"


def _subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` without pyplot: a standalone Figure and its axes."""
    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _colours(table: pd.DataFrame) -> list[str]:
    return [COMBINER if kind == "combiner" else MEMBER for kind in table["kind"]]


def f1_bars(table: pd.DataFrame, metric: str) -> bytes:
    """Horizontal bars of ``metric`` per model, best at the top."""
    ordered = table.sort_values(metric)
    fig, ax = _subplots(figsize=(8, 0.45 * len(ordered) + 1.2))
    ax.barh(ordered.index.astype(str), ordered[metric], color=_colours(ordered))
    for y, value in enumerate(ordered[metric]):
        ax.text(value, y, f" {value:.4f}", va="center", fontsize=8)
    low = float(ordered[metric].min())
    ax.set_xlim(max(0.0, low - 0.1), min(1.0, float(ordered[metric].max()) + 0.05))
    ax.set_xlabel(metric.replace("_", " "))
    ax.set_title(f"{metric.replace('_', ' ')} by model (orange: combiners)")
    return _png(fig)


def speed_vs_score(table: pd.DataFrame, metric: str) -> bytes:
    """``metric`` against milliseconds per prediction, log scale; top-left is best."""
    fig, ax = _subplots(figsize=(8, 5))
    ms = table["predict_ms_per_row"].clip(lower=1e-4)
    ax.scatter(ms, table[metric], c=_colours(table), s=60)
    for name, x, y in zip(table.index, ms, table[metric], strict=True):
        ax.annotate(str(name), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per prediction (log scale)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title("score against prediction time: top-left is best")
    ax.grid(True, alpha=0.3)
    return _png(fig)


def confusion_matrices(predictions: Mapping[str, np.ndarray], y: np.ndarray,
                       labels: list[str]) -> bytes:
    """One confusion matrix per model, counts annotated when there are few classes."""
    n = len(predictions)
    cols = min(n, 4)
    rows = -(-n // cols)
    size = 3.2 if len(labels) <= 10 else 6
    fig, axes = _subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax, (name, pred) in zip(axes.flat, predictions.items(), strict=False):
        ConfusionMatrixDisplay.from_predictions(
            y, pred, labels=range(len(labels)), display_labels=labels, ax=ax, colorbar=False,
            include_values=len(labels) <= 10, cmap="Blues")
        ax.set_title(str(name), fontsize=9)
        if len(labels) > 10:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def per_class(scores: pd.DataFrame) -> bytes:
    """Grouped bars of precision and recall per class (at most 40 classes shown)."""
    shown = scores.head(40)
    x = np.arange(len(shown))
    fig, ax = _subplots(figsize=(max(6, 0.5 * len(shown) + 2), 4))
    ax.bar(x - 0.2, shown["precision"], 0.4, label="precision", color=MEMBER)
    ax.bar(x + 0.2, shown["recall"], 0.4, label="recall", color=COMBINER)
    ax.set_xticks(x, shown.index.astype(str), rotation=45 if len(shown) > 6 else 0, ha="right")
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax.set_title("precision and recall per class (the ensemble)")
    return _png(fig)


def training_curves(histories: Mapping[str, Mapping[str, list[float]]]) -> bytes:
    """Loss and accuracy per epoch for each Keras member, validation dashed."""
    fig, axes = _subplots(len(histories), 2, figsize=(10, 3 * len(histories)), squeeze=False)
    for (name, history), (loss_ax, acc_ax) in zip(histories.items(), axes, strict=True):
        for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
            for prefix, style in (("", "-"), ("val_", "--")):
                values = history.get(prefix + key)
                if values:
                    ax.plot(range(1, len(values) + 1), values, style, marker="o",
                            label=prefix + key)
            ax.set_title(f"{name}: {key}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def precision_recall(y: np.ndarray, positive: np.ndarray, threshold: float) -> bytes:
    """The ensemble's precision/recall curve with the decision threshold marked."""
    precision, recall, thresholds = precision_recall_curve(y, positive)
    fig, ax = _subplots(figsize=(6, 5))
    ax.plot(recall, precision, color=MEMBER)
    at = int(np.clip(np.searchsorted(thresholds, threshold), 0, len(thresholds) - 1))
    ax.scatter([recall[at]], [precision[at]], color=COMBINER, s=80, zorder=3,
               label=f"threshold {threshold:.3f}: precision {precision[at]:.3f}, "
                     f"recall {recall[at]:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("precision/recall of the ensemble (positive class)")
    ax.grid(True, alpha=0.3)
    return _png(fig)
