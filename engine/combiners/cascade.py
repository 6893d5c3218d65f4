"""``cascade``: cheap members first; only undecided rows go on to the next member."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from engine.combiners.base import Combiner
from engine.constraints import Interval, validate_params
from engine.errors import ConfigError, ModelDirectoryError
from engine.search_space import Float


class CascadeCombiner(Combiner):
    """Ask members in turn, stopping for each row as soon as the answer is clear.

    At stage k a row's probabilities are the mean of the first k members'. If
    the top class leads the runner-up by at least ``2 * margin`` (for two
    classes: the probability is at least ``margin`` away from 0.5), the row is
    decided; otherwise it goes to the next member. The last stage decides every
    row left, so with ``margin`` large enough the cascade is the mean combiner,
    and with a small one it costs little more than its first member.

    Parameters
    ----------
    order : list of str or None, default=None
        Members in the order to ask them, cheap ones first; members left out
        are not used. Member order when None.
    margin : float, default=0.2
        How far from a tie a row must be to stop early, in (0, 0.5].

    Attributes
    ----------
    order_ : list of int
        Member indices in asking order.
    reach_ : list of float
        Share of the out-of-fold rows that reached each stage.

    Examples
    --------
    >>> import numpy as np
    >>> cheap = np.array([[0.95, 0.05], [0.55, 0.45]])
    >>> costly = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> c = CascadeCombiner(margin=0.2).fit(np.stack([cheap, costly]), np.array([0, 1]),
    ...                                     ["cheap", "costly"])
    >>> c.predict_proba(np.stack([cheap, costly])).round(3).tolist()
    [[0.95, 0.05], [0.325, 0.675]]
    >>> c.reach_
    [1.0, 0.5]
    """

    name = "cascade"

    def __init__(self, order: Sequence[str] | None = None, *, margin: float = 0.2) -> None:
        self.order = order
        self.margin = margin

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """How sure a member must be to answer (wider: fewer rows reach the expensive ones)."""
        return {"margin": Float(0.02, 0.5)}

    def _fit(self, P: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:
        validate_params(self, {"margin": [Interval(float, 0, 0.5, "right")]})
        order = list(self.members_) if self.order is None else list(self.order)
        unknown = [m for m in order if m not in self.members_]
        if unknown or not order or len(set(order)) != len(order):
            raise ConfigError(f"cascade order {order} must name members ({self.members_}) "
                              f"at most once each")
        self.order_ = [self.members_.index(m) for m in order]
        self.reach_ = self._reach(P)

    def _check_loaded(self) -> None:
        super()._check_loaded()
        validate_params(self, {"margin": [Interval(float, 0, 0.5, "right")]})
        order = getattr(self, "order_", None)
        n = len(self.members_)
        if not isinstance(order, list) or not order or len(set(order)) != len(order) \
                or not all(isinstance(m, int) and 0 <= m < n for m in order):
            raise ModelDirectoryError(f"the cascade's order_ must list distinct members "
                                      f"(0-{n - 1}); the model directory is damaged")

    def _decided(self, mean: np.ndarray) -> np.ndarray:
        top2 = np.sort(mean, axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0] >= 2 * self.margin - 1e-12

    def _run(self, proba_of: Callable[[int, np.ndarray], np.ndarray], n_rows: int
             ) -> tuple[np.ndarray, list[int]]:
        """Probabilities for all rows and how many rows each stage saw."""
        out = np.zeros((n_rows, self.n_classes_))
        summed = np.zeros((n_rows, self.n_classes_))
        active = np.arange(n_rows)
        seen = []
        for stage, member in enumerate(self.order_, start=1):
            seen.append(len(active))
            if not len(active):
                continue
            summed[active] += proba_of(member, active)
            mean = summed[active] / stage
            done = np.ones(len(active), bool) if stage == len(self.order_) else \
                self._decided(mean)
            out[active[done]] = mean[done]
            active = active[~done]
        return out, seen

    def _reach(self, P: np.ndarray) -> list[float]:
        _, seen = self._run(lambda m, rows: P[m, rows], P.shape[1])
        return [s / max(P.shape[1], 1) for s in seen]

    def needed(self) -> list[bool]:
        return [m in self.order_ for m in range(len(self.members_))]

    def predict_proba(self, P: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        P = self._check(P)
        return self._run(lambda m, rows: P[m, rows], P.shape[1])[0]

    def predict_from(self, proba_of: Callable[[int, np.ndarray | None], np.ndarray],
                     n_rows: int, features: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Later members predict only the rows the earlier ones left undecided."""
        proba, _ = self._run(proba_of, n_rows)
        return np.argmax(proba, axis=1), proba

    def predict_cost(self, member_seconds: Mapping[str, float], P: np.ndarray) -> float:
        """Each member's time on all rows, times the share of rows that reach it."""
        _, seen = self._run(lambda m, rows: np.asarray(P)[m, rows], np.asarray(P).shape[1])
        n = max(np.asarray(P).shape[1], 1)
        return float(sum(member_seconds[self.members_[m]] * s / n
                         for m, s in zip(self.order_, seen, strict=True)))
