"""``stacking``: a meta-learner trained on the members' out-of-fold probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from engine.combiners.base import Combiner
from engine.errors import ConfigError
from engine.importing import build_estimator
from engine.protocol import proba_by_code
from engine.seeding import seeded


class StackingCombiner(Combiner):
    """Learn how to weigh the members with a scikit-learn classifier.

    The meta-learner sees, per member, the probability of class 1 (two
    classes) or all class probabilities (more classes), plus any passthrough
    columns. It is trained on out-of-fold probabilities, as in
    scikit-learn's ``StackingClassifier``.

    Parameters
    ----------
    final_estimator : estimator, str or None, default=None
        Any scikit-learn classifier with ``predict_proba``, or an import
        string ``"package.module:Class"``. ``LogisticRegression()`` when None.
    passthrough : list of str or None, default=None
        Numeric input columns (of a DataFrame X) given to the meta-learner too.
    random_state : int or None, default=None
        Seed for the meta-learner, when it takes one.

    Attributes
    ----------
    final_estimator_ : estimator
        The fitted meta-learner.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 50)
    >>> good = np.stack([1 - y * 0.8 - 0.1, y * 0.8 + 0.1], axis=1)
    >>> P = np.stack([good, rng.dirichlet([1, 1], 50)])
    >>> StackingCombiner().fit(P, y, ["good", "noise"]).predict(P)[:5].tolist() == y[:5].tolist()
    True
    """

    name = "stacking"

    def __init__(self, final_estimator: Any = None, *, passthrough: Sequence[str] | None = None,
                 random_state: int | None = None) -> None:
        self.final_estimator = final_estimator
        self.passthrough = passthrough
        self.random_state = random_state

    def _meta_learner(self) -> Any:
        spec = self.final_estimator if self.final_estimator is not None else LogisticRegression(
            max_iter=1000)
        estimator = build_estimator(spec)
        if not is_classifier(estimator) or not hasattr(estimator, "predict_proba"):
            raise ConfigError(f"final_estimator must be a scikit-learn classifier with "
                              f"predict_proba, got {type(estimator).__name__}")
        return seeded(clone(estimator), self.random_state, deep=True)

    def _features(self, P: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        # With two classes, column 0 is 1 - column 1: keep one, as scikit-learn does.
        parts = [P[:, :, 1].T] if P.shape[2] == 2 else [np.hstack(list(P))]
        if self.passthrough:
            if features is None or features.shape[1] != len(self.passthrough):
                raise ConfigError(f"stacking passthrough needs the columns {self.passthrough} "
                                  f"of the input DataFrame")
            parts.append(np.asarray(features, dtype=float))
        return np.hstack(parts)

    def _fit(self, P: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:
        self.final_estimator_ = self._meta_learner().fit(self._features(P, features), y)

    def predict_proba(self, P: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        P = self._check(P)
        X = self._features(P, features)
        if type(self.final_estimator_) is LogisticRegression:
            out = np.zeros((len(X), self.n_classes_))
            out[:, self.final_estimator_.classes_] = _logistic_proba(self.final_estimator_, X)
            return out
        return proba_by_code(self.final_estimator_, X, self.n_classes_)

    def oof_predict_proba(self, P: np.ndarray, y: np.ndarray, cv: Any,
                          features: np.ndarray | None = None) -> np.ndarray:
        """Cross-validated meta-learner probabilities: an honest score for stacking."""
        P = np.asarray(P, dtype=float)
        return cross_val_predict(self._meta_learner(), self._features(P, features), y, cv=cv,
                                 method="predict_proba")


def _logistic_proba(model: LogisticRegression, X: np.ndarray) -> np.ndarray:
    """``model.predict_proba(X)``, with each row's dot product summed on its own.

    BLAS picks its kernel by matrix size, so a row's last bit would depend on how
    many rows are predicted together (a streamed file in chunks of 7 would not
    equal the same file in one chunk); a per-row sum does not.
    """
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    decision = (X[:, None, :] * model.coef_[None, :, :]).sum(axis=2) + model.intercept_
    if decision.shape[1] == 1:
        positive = expit(decision[:, 0])
        return np.stack([1 - positive, positive], axis=1)
    return softmax(decision, copy=False)
