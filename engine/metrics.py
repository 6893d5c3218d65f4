"""The one table of scorers, and the classification scores of the comparison table.

Every part that takes a metric by name (the decision threshold, ensemble
selection) looks it up in :data:`SCORERS`, as AutoGluon's greedy ensemble
takes its scorers from its shared metrics module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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
    from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support

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
    from sklearn.metrics import roc_auc_score

    n_classes = proba.shape[1]
    if len(np.unique(y_true)) < n_classes:
        return float("nan")
    if n_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    rows = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-15, None)
    return float(roc_auc_score(y_true, rows, multi_class="ovr", labels=np.arange(n_classes)))


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1))))


def _accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    return float(np.mean(pred == y))


def _f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """F1 of class 1 for two classes (Kaggle's metric), macro F1 for more."""
    scores = []
    for k in [1] if n_classes == 2 else range(n_classes):
        tp = np.sum((pred == k) & (y == k))
        denominator = np.sum(pred == k) + np.sum(y == k)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y, pred))


def _mcc(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(y, pred))


@dataclass(frozen=True)
class Scorer:
    """A metric of class-code predictions, as every part of the engine looks it up.

    Attributes
    ----------
    name : str
    function : callable
        ``function(y, proba)`` when ``needs_proba``, else
        ``function(y, pred, n_classes)`` on the predicted codes ``pred``.
    greater_is_better : bool
    needs_proba : bool
        False when only the predicted class counts (so a decision threshold can
        be tuned for it).

    Examples
    --------
    >>> y = np.array([0, 1, 1])
    >>> proba = np.array([[0.8, 0.2], [0.4, 0.6], [0.7, 0.3]])
    >>> round(SCORERS["accuracy"](y, proba), 4)
    0.6667
    """

    name: str
    function: Callable[..., float]
    greater_is_better: bool
    needs_proba: bool

    def __call__(self, y: np.ndarray, proba: np.ndarray) -> float:
        """The score of probabilities ``proba`` (n, K) against class codes ``y``."""
        if self.needs_proba:
            return self.function(y, proba)
        return self.score_codes(y, np.argmax(proba, axis=1), proba.shape[1])

    def score_codes(self, y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
        """The score of predicted class codes (a scorer that does not need probabilities)."""
        return self.function(y, pred, n_classes)


SCORERS: dict[str, Scorer] = {scorer.name: scorer for scorer in (
    Scorer("f1", _f1, greater_is_better=True, needs_proba=False),
    Scorer("accuracy", _accuracy, greater_is_better=True, needs_proba=False),
    Scorer("balanced_accuracy", _balanced_accuracy, greater_is_better=True, needs_proba=False),
    Scorer("mcc", _mcc, greater_is_better=True, needs_proba=False),
    Scorer("log_loss", _log_loss, greater_is_better=False, needs_proba=True),
    Scorer("roc_auc", roc_auc, greater_is_better=True, needs_proba=True),
)}
