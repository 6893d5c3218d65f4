"""``mean``: (weighted) average of the members' class probabilities."""

from __future__ import annotations

import numpy as np

from engine.combiners.base import WeightedCombiner


class MeanCombiner(WeightedCombiner):
    """Average every member's full probability matrix, column by column.

    Each column is one class, so the average is always of like with like
    (never "probability of the predicted class" with "probability of class 1").

    Parameters
    ----------
    weights : dict of str to float, list of float, or None, default=None
        Per-member weights, by name or in member order; equal when None.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        Normalised weights in member order.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[[0.9, 0.1]], [[0.3, 0.7]]])
    >>> MeanCombiner().fit(P, np.array([0]), ["a", "b"]).predict_proba(P)
    array([[0.6, 0.4]])
    """

    name = "mean"

    def predict_proba(self, P: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        P = self._check(P)
        return np.tensordot(self.weights_, P, axes=1)
