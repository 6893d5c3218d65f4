"""Choosing a binary decision threshold on out-of-fold probabilities."""

from __future__ import annotations

import numpy as np

from engine.constraints import Interval
from engine.errors import ConfigError, did_you_mean
from engine.metrics import SCORERS

# The scorers a threshold can be tuned for: those that read only the predicted class.
METRICS = [name for name, scorer in SCORERS.items() if not scorer.needs_proba]


def check_threshold(threshold: str | float | None) -> None:
    """Raise a ConfigError unless ``threshold`` is None, a metric name or a number in (0, 1)."""
    if threshold is None:
        return
    if isinstance(threshold, str):
        if threshold not in METRICS:
            raise ConfigError(f"threshold '{threshold}' is not a metric to tune for"
                              f"{did_you_mean(threshold, METRICS)}; use one of "
                              f"{', '.join(METRICS)} or a number between 0 and 1")
        return
    if not Interval(float, 0, 1, "neither").accepts(threshold):
        raise ConfigError(f"threshold must be a metric name ({', '.join(METRICS)}) or a "
                          f"number between 0 and 1, got {threshold!r}")


def best_threshold(y: np.ndarray, positive: np.ndarray, metric: str = "f1") -> float:
    """The threshold on ``positive`` (probability of class code 1) that maximises ``metric``.

    Every distinct probability is a candidate; the returned threshold is the
    midpoint between the best candidate and the next lower probability, so
    that small changes in the probabilities do not flip the decision.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        True class codes (0 or 1).
    positive : ndarray of float, shape (n,)
        Out-of-fold probabilities of class 1.
    metric : str, default="f1"
        A scorer of :data:`engine.metrics.SCORERS` that reads only the predicted class.

    Returns
    -------
    float
        Predict class 1 when ``positive >= threshold``.
    """
    scorer = SCORERS[metric]
    values = np.unique(positive)
    # More than ~1000 candidates changes nothing but the run time.
    candidates = values if len(values) <= 1000 else np.quantile(values, np.linspace(0, 1, 1001))
    results = [scorer.score_codes(y, (positive >= t).astype(np.int64), 2) for t in candidates]
    best = int(np.argmax(results))
    lower = values[values < candidates[best]]
    threshold = (candidates[best] + lower[-1]) / 2 if len(lower) else candidates[best]
    return float(np.clip(threshold, 1e-6, 1 - 1e-6))
