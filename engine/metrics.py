"""Classification scores and the comparison table."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

SCORE_COLUMNS = ["accuracy", "precision", "recall", "f1", "f1_positive", "f1_macro", "log_loss",
                 "roc_auc"]


def classification_scores(y_true: np.ndarray, proba: np.ndarray,
                          y_pred: np.ndarray | None = None) -> dict[str, float]:
    """Scores of class-code predictions.

    Parameters
    ----------
    y_true : ndarray of int, shape (n,)
        True class codes.
    proba : ndarray, shape (n, K)
        Predicted probabilities.
    y_pred : ndarray of int or None
        Predicted codes; the most probable class when None.

    Returns
    -------
    dict
        accuracy; precision, recall and f1 weighted by support (the tutorial's
        numbers); f1_positive, the F1 of class code 1 (Kaggle's metric) for two
        classes; f1_macro for more; log_loss; and roc_auc (one-vs-rest macro
        for more than two classes; NaN when a class is absent from ``y_true``).
    """
    y_pred = np.argmax(proba, axis=1) if y_pred is None else y_pred
    n_classes = proba.shape[1]
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="weighted", zero_division=0)
    scores = {"accuracy": accuracy_score(y_true, y_pred), "precision": precision,
              "recall": recall, "f1": f1}
    if n_classes == 2:
        scores["f1_positive"] = f1_score(y_true, y_pred, pos_label=1, zero_division=0)
    else:
        scores["f1_macro"] = f1_score(y_true, y_pred, average="macro", zero_division=0)
    clipped = np.clip(proba, 1e-15, 1)
    scores["log_loss"] = log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True),
                                  labels=np.arange(n_classes))
    scores["roc_auc"] = roc_auc(y_true, proba)
    return {k: float(v) for k, v in scores.items()}


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC of class-code predictions; NaN when some class has no true rows."""
    n_classes = proba.shape[1]
    if len(np.unique(y_true)) < n_classes:
        return float("nan")
    if n_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    rows = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-15, None)
    return float(roc_auc_score(y_true, rows, multi_class="ovr", labels=np.arange(n_classes)))
