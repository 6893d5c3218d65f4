"""The combiner protocol: fit on out-of-fold probabilities, predict from members' probabilities."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from engine.errors import ConfigError, ModelDirectoryError
from engine.io.state import load_state, save_state


class Combiner(BaseEstimator):
    """Base class for combiners.

    ``P`` is always a float array of shape (n_members, n_rows, n_classes): the
    members' probabilities in the order of ``members``. A combiner that learns
    (stacking) is fitted on out-of-fold probabilities, so it never sees a
    member's predictions on rows that member was trained on.

    Subclasses implement ``_fit`` and ``predict_proba``; ``predict`` defaults to
    the most probable class.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str | None] = None

    def fit(self, P: np.ndarray, y: np.ndarray, members: Sequence[str],
            features: np.ndarray | None = None) -> Combiner:
        """Learn from out-of-fold probabilities ``P`` and class codes ``y``.

        ``features`` (n_rows, n_features) are extra numeric columns of the
        input, given only to combiners whose ``passthrough`` asks for them.

        Returns
        -------
        self : Combiner
        """
        P = np.asarray(P, dtype=float)
        if P.ndim != 3 or P.shape[0] != len(members) or P.shape[1] != len(y):
            raise ValueError(f"P must have shape (n_members={len(members)}, n_rows={len(y)}, "
                             f"n_classes), got {P.shape}")
        self.members_ = list(members)
        self.n_classes_ = P.shape[2]
        self._fit(P, np.asarray(y), features)
        return self

    def _fit(self, P: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:
        """Learn what the combiner needs; nothing by default."""

    def predict_proba(self, P: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Combined class probabilities, shape (n_rows, n_classes)."""
        raise NotImplementedError

    def predict(self, P: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Class codes, shape (n_rows,)."""
        return np.argmax(self.predict_proba(P, features), axis=1)

    def oof_predict_proba(self, P: np.ndarray, y: np.ndarray, cv: Any,
                          features: np.ndarray | None = None) -> np.ndarray:
        """Honest probabilities on the training rows, for validation scores.

        Combiners that learn nothing from y can predict ``P`` directly; those
        that do (stacking) override this with a cross-validated prediction.
        """
        return self.predict_proba(P, features)

    def needed(self) -> list[bool]:
        """Which members' probabilities the combiner reads (all by default), in member order."""
        return [True] * len(self.members_)

    def predict_from(self, proba_of: Callable[[int, np.ndarray | None], np.ndarray],
                     n_rows: int, features: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Class codes and probabilities, asking members for probabilities only as needed.

        ``proba_of(m, rows)`` returns member ``m``'s probabilities for ``rows``
        (all rows when None). Members the combiner does not read are never asked;
        a cascade asks later members only for the rows still undecided.
        """
        P = np.stack([proba_of(m, None) if use else np.zeros((n_rows, self.n_classes_))
                      for m, use in enumerate(self.needed())])
        return self.predict(P, features), self.predict_proba(P, features)

    def cross_validated_proba(self, P: np.ndarray, y: np.ndarray, cv: Any,
                              features: np.ndarray | None = None) -> np.ndarray:
        """Out-of-fold probabilities of clones of this combiner fitted on the other folds."""
        from sklearn.base import clone

        P = np.asarray(P, dtype=float)
        out = np.zeros(P.shape[1:])
        for train, test in cv.split(np.zeros(len(y)), y):
            part = clone(self).fit(P[:, train], y[train], self.members_,
                                   None if features is None else features[train])
            out[test] = part.predict_proba(P[:, test], None if features is None else
                                           features[test])
        return out

    def predict_cost(self, member_seconds: Mapping[str, float], P: np.ndarray) -> float:
        """Seconds the members need to predict the rows behind ``P`` for this combiner.

        ``member_seconds`` is each member's time on all rows. Combiners that
        consult only some members for some rows (a cascade) return less than
        the sum.
        """
        return float(sum(member_seconds[m] for m, use in zip(self.members_, self.needed(),
                                                             strict=True) if use))

    def save(self, directory: str | Path) -> None:
        save_state(self, directory)

    @classmethod
    def load(cls, directory: str | Path) -> Combiner:
        combiner = load_state(cls, directory)
        combiner._check_loaded()
        return combiner

    def _check_loaded(self) -> None:
        """Refuse fitted attributes that could not have been fitted (a hostile state file)."""
        members = getattr(self, "members_", None)
        if not isinstance(members, list) or not members \
                or not all(isinstance(m, str) for m in members) \
                or len(set(members)) != len(members):
            raise ModelDirectoryError("the combiner's members_ must be distinct member names; "
                                      "the model directory is damaged")

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The parameters worth tuning (:mod:`engine.search_space`); none by default."""
        return {}

    def _check(self, P: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "members_")
        P = np.asarray(P, dtype=float)
        if P.ndim != 3 or P.shape[0] != len(self.members_):
            raise ValueError(f"expected probabilities of {len(self.members_)} members, "
                             f"got shape {P.shape}")
        return P


class WeightedCombiner(Combiner):
    """A combiner with one fixed weight per member (mean, vote).

    Parameters
    ----------
    weights : dict of str to float, list of float, or None, default=None
        Per-member weights, by name or in member order; equal when None.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        Normalised weights in member order.
    """

    def __init__(self, weights: Mapping[str, float] | Sequence[float] | None = None) -> None:
        self.weights = weights

    def _fit(self, P: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:
        self.weights_ = member_weights(self.weights, self.members_)


def member_weights(weights: Mapping[str, float] | Sequence[float] | None,
                   members: Sequence[str]) -> np.ndarray:
    """Normalised weights in member order from a dict by name, a list, or None (equal)."""
    if weights is None:
        w = np.ones(len(members))
    elif isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(members))
        if unknown:
            raise ConfigError(f"weights name unknown members {unknown}; members are {members}")
        w = np.array([float(weights.get(m, 0.0)) for m in members])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(members),):
            raise ConfigError(f"give {len(members)} weights, one per member, or a dict by name")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ConfigError("weights must be non-negative numbers with a positive sum")
    w = w / w.max()  # first, so that huge weights (1e308 twice) cannot overflow the sum
    return w / w.sum()
