"""``vote``: hard majority vote of the members' predicted classes."""

from __future__ import annotations

import numpy as np

from engine.combiners.base import WeightedCombiner


class VoteCombiner(WeightedCombiner):
    """Majority (or weighted) vote of each member's most probable class.

    Ties are broken deterministically: among the tied classes, the one with
    the highest mean probability wins, then the lowest class code.

    Parameters
    ----------
    weights : dict of str to float, list of float, or None, default=None
        Votes per member; equal when None.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[[0.9, 0.1]], [[0.4, 0.6]], [[0.45, 0.55]]])
    >>> VoteCombiner().fit(P, np.array([0]), ["a", "b", "c"]).predict(P).tolist()
    [1]
    """

    name = "vote"

    def predict_proba(self, P: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Share of the (weighted) votes each class received."""
        P = self._check(P)
        votes = np.eye(P.shape[2])[np.argmax(P, axis=2)]  # (members, rows, classes)
        return np.tensordot(self.weights_, votes, axes=1)

    def predict(self, P: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        shares = self.predict_proba(P)
        top = np.isclose(shares, shares.max(axis=1, keepdims=True))
        # Among tied classes prefer the higher mean probability; argmax then
        # picks the lowest code, so the result never depends on member order.
        tie_break = np.where(top, np.asarray(P, dtype=float).mean(axis=0), -np.inf)
        return np.argmax(tie_break, axis=1)
