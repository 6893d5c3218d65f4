"""``selection``: greedy ensemble selection with replacement (Caruana et al., 2004)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.combiners.base import Combiner
from engine.constraints import Interval, Options, validate_params
from engine.metrics import SCORERS
from engine.search_space import Int


class SelectionCombiner(Combiner):
    """Weights found by greedy forward selection of members, with replacement.

    Start from an empty ensemble; ``n_iter`` times, add the member (members may
    repeat) whose addition gives the best score of the averaged out-of-fold
    probabilities. A member's weight is the share of picks it got: weak or
    redundant members get 0 and need not be run at all. This is the weighted
    ensemble AutoGluon builds on top of its models.

    Parameters
    ----------
    n_iter : int, default=50
        Number of greedy picks.
    metric : str, default="log_loss"
        What each pick optimises on the out-of-fold probabilities: any name in
        :data:`engine.metrics.SCORERS` (``log_loss``, ``accuracy``, ``f1``,
        ``roc_auc``, ...). ``f1`` is positive-class F1 for two classes, macro
        F1 otherwise.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        Share of picks per member, in member order; sums to 1.
    trajectory_ : list of float
        The score after each pick.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1, 1, 0])
    >>> good = np.array([[0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.9, 0.1]])
    >>> bad = good[:, ::-1]
    >>> SelectionCombiner(n_iter=5).fit(np.stack([bad, good]), y, ["bad", "good"]).weights_
    array([0., 1.])
    """

    name = "selection"

    def __init__(self, n_iter: int = 50, *, metric: str = "log_loss") -> None:
        self.n_iter = n_iter
        self.metric = metric

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Rounds of greedy selection (more rounds: finer weights, more risk of overfitting)."""
        return {"n_iter": Int(5, 200, log=True)}

    def _fit(self, P: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:
        validate_params(self, {"metric": [Options(*SCORERS)],
                               "n_iter": [Interval(int, 1, None)]})
        score = SCORERS[self.metric]
        sign = 1.0 if score.greater_is_better else -1.0
        counts = np.zeros(len(P))
        total = np.zeros(P.shape[1:])
        self.trajectory_ = []
        for step in range(1, self.n_iter + 1):
            candidates = [sign * score(y, (total + P[m]) / step) for m in range(len(P))]
            candidates = [c if np.isfinite(c) else -np.inf for c in candidates]
            best = int(np.argmax(candidates))  # ties: the earlier member
            counts[best] += 1
            total += P[best]
            self.trajectory_.append(float(sign * candidates[best]))
        self.weights_ = counts / counts.sum()

    def predict_proba(self, P: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        P = self._check(P)
        return np.tensordot(self.weights_, P, axes=1)

    def needed(self) -> list[bool]:
        """Members with weight 0 are never asked to predict."""
        return [bool(w > 0) for w in self.weights_]

    def oof_predict_proba(self, P: np.ndarray, y: np.ndarray, cv: Any,
                          features: np.ndarray | None = None) -> np.ndarray:
        """Selection learns from y: score it cross-validated, as stacking is."""
        return self.cross_validated_proba(P, y, cv, features)
