"""The model-plugin protocol and the base class that implements its chores.

A plugin is a class with a registry ``name`` and four methods: ``fit(X, y)``,
``predict_proba(X)``, ``save(directory)`` and the classmethod
``load(directory)``. X is a sequence of texts, y integer class codes
0..K-1; the engine owns the original labels. Constructor arguments are the
configuration (scikit-learn's ``get_params``), so the engine can clone a member
for every fold and record its config in the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from engine.constraints import Interval, validate_params
from engine.data import as_text_list
from engine.errors import DataError
from engine.io.skops import trusting
from engine.io.state import load_state, save_state

POSITIVE_INT = Interval(int, 1, None)


class ModelPluginProtocol(Protocol):
    """What the engine calls on a member; any class with these works.

    The static type of every member (``build_member``, ``Ensemble.members_``):
    a type checker tells a plugin author what is missing before anything runs.

    Optional: a classmethod ``search_space(params=None)`` returning
    ``{parameter: Float | Int | Categorical}`` (:mod:`engine.search_space`),
    the parameters worth tuning and their ranges; ``params`` are the
    member's fixed parameters, for a space that depends on them.
    ``ensemble tune`` searches it; a plugin without one is left as configured.

    Optional: ``fit_soft(X, P)``, learning class *probabilities* instead of
    labels (distillation, :meth:`engine.Ensemble.distill`). P is a float
    array (n, K) whose rows sum to 1; column k is class k. It fits the
    same model ``fit`` does, minimising cross-entropy against P rather than
    against one-hot labels, so ``fit_soft(X, one_hot(y))`` learns what
    ``fit(X, y)`` learns. A separate method, not ``fit(X, y,
    sample_weight=)`` with one weighted row per class: a network learns P
    in one pass over n rows where weighted copies would cost K passes, and
    a plugin says plainly whether it can learn probabilities at all. One
    without it is given the most probable class as a hard label, with a
    warning. Weight-based learners can use :func:`soft_rows`.
    """

    name: ClassVar[str]

    def fit(self, X: Sequence[str], y: np.ndarray) -> ModelPluginProtocol: ...

    def predict_proba(self, X: Sequence[str]) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> ModelPluginProtocol: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...


class ModelPlugin(BaseEstimator):
    """Base class for model plugins: scikit-learn parameters plus input checks.

    Subclasses store every constructor argument unchanged under the same name
    (as scikit-learn estimators do), set fitted attributes ending in ``_`` and
    implement ``fit``, ``predict_proba``, ``save`` and ``load``.

    Attributes
    ----------
    name : str
        The registry name, e.g. ``"tfidf-nb"``.
    version : str or None
        The plugin's own version; the package version when None.
    trusted_types : tuple of str
        Fully-qualified types beyond skops' defaults that ``load`` accepts in
        this plugin's own files (e.g. ``"sklearn.calibration._SigmoidCalibration"``).
    _constraints : dict of str to list
        What each parameter may be (:mod:`engine.constraints`), as
        scikit-learn's ``_parameter_constraints``; ``_check_params()`` checks them.

    Examples
    --------
    >>> class Majority(ModelPlugin):
    ...     name = "majority"
    ...     def fit(self, X, y):
    ...         X, y = self._validate_fit(X, y)
    ...         self.prior_ = np.bincount(y, minlength=self.n_classes_) / len(y)
    ...         return self
    ...     def predict_proba(self, X):
    ...         X = self._validate_predict(X)
    ...         return np.tile(self.prior_, (len(X), 1))
    """

    name: ClassVar[str] = ""
    version: ClassVar[str | None] = None
    # Types beyond skops' defaults that this plugin's own files may hold. Trust
    # comes from the installed plugin code, never from the model directory.
    trusted_types: ClassVar[tuple[str, ...]] = ()
    # What each parameter may be (engine.constraints), checked by _check_params.
    _constraints: ClassVar[dict[str, list[Any]]] = {}

    def fit(self, X: Sequence[str], y: np.ndarray) -> ModelPlugin:
        raise NotImplementedError(f"{type(self).__name__} must implement fit(X, y)")

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement predict_proba(X)")

    def save(self, directory: str | Path) -> None:
        """Write params and fitted attributes into the empty ``directory``.

        The default handles JSON values, numeric arrays and scikit-learn
        objects (via skops); override it for anything else.
        """
        save_state(self, directory)

    @classmethod
    def load(cls, directory: str | Path) -> ModelPlugin:
        """Inverse of :meth:`save`; the loaded plugin predicts identical probabilities."""
        with trusting(cls.trusted_types):
            return load_state(cls, directory)

    @classmethod
    def machine_warning(cls, params: dict[str, Any] | None = None) -> str | None:
        """One line to show before a long fit when this machine makes the member much slower
        than its documented times (no bf16 units, no GPU, ...); None when nothing to say.

        ``ensemble demo`` prints it up front. The default says nothing.
        """
        return None

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The parameters worth tuning and their ranges: nothing unless a subclass says so.

        Parameters
        ----------
        params : dict or None
            The member's fixed parameters, for a space that depends on them.

        Returns
        -------
        dict of str to Float, Int or Categorical
            See :mod:`engine.search_space`.
        """
        return {}

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Class codes with the highest probability."""
        return np.argmax(self.predict_proba(X), axis=1)

    # -- helpers for subclasses ------------------------------------------------

    def _validate_fit(self, X: Sequence[str], y: Any) -> tuple[list[str], np.ndarray]:
        texts = as_text_list(X)
        codes = np.asarray(y)
        if codes.ndim != 1 or len(codes) != len(texts):
            raise DataError(
                f"X has {len(texts)} texts but y has {len(codes)} labels; pass one label per text")
        if len(texts) == 0:
            raise DataError("cannot fit on empty data; pass at least one text per class")
        if not np.issubdtype(codes.dtype, np.integer) or codes.min() < 0:
            raise DataError("y must hold integer class codes 0..K-1; encode labels first "
                            "(engine.Ensemble does this for you)")
        self.n_classes_ = int(codes.max()) + 1
        return texts, codes.astype(np.int64)

    def _validate_fit_soft(self, X: Sequence[str], P: Any) -> tuple[list[str], np.ndarray]:
        """Texts and class probabilities for ``fit_soft``; sets ``n_classes_`` to P's width."""
        texts = as_text_list(X)
        P = check_soft_targets(P, len(texts))
        self.n_classes_ = P.shape[1]
        return texts, P

    def _check_params(self) -> None:
        """ConfigError for the first parameter that breaks the class's ``_constraints``."""
        validate_params(self, self._constraints)

    def _validate_predict(self, X: Sequence[str]) -> list[str]:
        check_is_fitted(self, "n_classes_")
        return as_text_list(X)


def proba_from_output(out: Any) -> np.ndarray:
    """Class probabilities (n, K) from a network's output layer.

    One sigmoid unit (two classes) becomes the two columns ``1 - p, p``; a
    softmax is renormalised in float64 so that rows sum to 1 exactly enough.

    Examples
    --------
    >>> proba_from_output(np.array([[0.25], [1.0]], dtype=np.float32))
    array([[0.75, 0.25],
           [0.  , 1.  ]])
    """
    out = np.asarray(out, dtype=np.float64)
    if out.shape[1] == 1:
        return np.hstack([1 - out, out])
    return out / out.sum(axis=1, keepdims=True)


def proba_by_code(estimator: Any, features: Any, n_classes: int) -> np.ndarray:
    """``estimator.predict_proba(features)`` with column k for class code k.

    A scikit-learn estimator has columns only for the classes it saw; a class
    missing from its training rows gets a column of zeros here.
    """
    proba = np.zeros((len(features), n_classes))
    if len(features):
        proba[:, estimator.classes_] = estimator.predict_proba(features)
    return proba


def check_soft_targets(P: Any, n_rows: int) -> np.ndarray:
    """``P`` as float64 class probabilities of shape (n_rows, K >= 2), rows renormalised.

    Raises a one-line DataError for anything else (NaN, negative, rows of zeros).
    """
    try:
        P = np.asarray(P, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("soft targets must be a numeric array of shape (n_rows, n_classes)"
                        ) from None
    if P.ndim != 2 or P.shape[0] != n_rows or P.shape[1] < 2:
        raise DataError(f"soft targets must have shape ({n_rows}, n_classes >= 2), one row of "
                        f"class probabilities per text; got {P.shape}")
    if n_rows == 0:
        raise DataError("cannot fit on empty data; pass at least one text")
    sums = P.sum(axis=1) if np.isfinite(P).all() else np.zeros(n_rows)
    if (P < 0).any() or not (sums > 0).all():
        raise DataError("soft targets must be finite, non-negative class probabilities with "
                        "a positive sum in every row")
    return P / sums[:, None]


def soft_rows(targets: np.ndarray, min_weight: float = 1e-6
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One weighted row per (text, class) for learners that take ``sample_weight``.

    Cross-entropy against ``targets`` (n, K) equals the weighted log-loss of these rows, so
    a logistic regression (or Naive Bayes' weighted counts) fitted on them
    learns the probabilities. Classes below ``min_weight`` are left out.

    Returns
    -------
    (rows, codes, weights)
        Indices into the texts, the class code of each copy, and its weight.

    Examples
    --------
    >>> rows, codes, weights = soft_rows(np.array([[0.75, 0.25], [0.0, 1.0]]))
    >>> rows.tolist(), codes.tolist(), weights.tolist()
    ([0, 0, 1], [0, 1, 1], [0.75, 0.25, 1.0])
    """
    rows, codes = np.nonzero(targets >= min_weight)
    return rows, codes.astype(np.int64), targets[rows, codes]
