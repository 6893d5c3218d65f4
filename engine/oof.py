"""The ensemble's own out-of-fold probabilities: its honest view of every training row.

Each member's out-of-fold probabilities come from a model that never saw the
row's label. The *combiner's* out-of-fold output goes one step further: for
a combiner that learns (stacking, greedy selection) it is a cross-validated
prediction of clones fitted on the other folds, so no part of the ensemble saw
the row's label. Two features stand on it, and both read it from here:

- distillation (:mod:`engine.distill`): soft targets for a student on the
  training rows, never the refitted members' overconfident in-sample output;
- the label audit (:mod:`engine.label_audit`): confident learning judges each
  given label against it.

It is computed once at fit time and saved in ``oof.npz``, so a loaded model
gives exactly the same probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from engine.errors import ConfigError


def combiner_folds(cv: int, random_state: int | None) -> StratifiedKFold:
    """The folds the combiner's out-of-fold output is cross-validated on."""
    return StratifiedKFold(cv, shuffle=True, random_state=random_state)


def combined_oof_proba(combiner: Any, P: np.ndarray, y: np.ndarray, *, cv: int,
                       random_state: int | None, features: np.ndarray | None = None
                       ) -> np.ndarray:
    """The fitted ``combiner``'s out-of-fold output over the members' out-of-fold ``P``.

    Parameters
    ----------
    combiner : Combiner
        Fitted on ``P`` and ``y``.
    P : ndarray of shape (n_members, n_rows, n_classes)
        The members' out-of-fold probabilities.
    y : ndarray of shape (n_rows,)
        Class codes.
    cv : int
        Folds of the combiner's own cross-validation (for combiners that learn from y).
    random_state : int or None
        Seeds those folds.
    features : ndarray or None
        Passthrough columns, for combiners that read them.

    Returns
    -------
    ndarray of shape (n_rows, n_classes)
    """
    return combiner.oof_predict_proba(P, y, combiner_folds(cv, random_state), features)


def has_oof(ensemble: Any) -> bool:
    """Whether the fitted ``ensemble`` holds out-of-fold probabilities of its training rows.

    A distilled student does not: it learned the teacher's probabilities,
    so there is no out-of-fold view of its own to judge or learn from.
    """
    check_is_fitted(ensemble)
    return ensemble.oof_.ndim == 3 and ensemble.oof_.shape[1] > 0


def require_oof(ensemble: Any, purpose: str, hint: str | None = None) -> None:
    """A one-line ConfigError when ``ensemble`` has no out-of-fold probabilities for ``purpose``."""
    if not has_oof(ensemble):
        student = getattr(ensemble, "distilled_from_", None)
        hint = f" {hint}" if hint else (
            " it is a distilled student; use its teacher instead" if student else
            " fit it with engine.Ensemble (or `ensemble fit`), which keeps them")
        raise ConfigError(f"cannot {purpose}: this model has no out-of-fold probabilities of "
                          f"its training rows;{hint}")


def ensemble_oof_proba(ensemble: Any) -> np.ndarray:
    """The fitted ensemble's own out-of-fold probabilities, shape (n_rows, n_classes).

    For stacking, the combiner's out-of-fold output over the members'
    out-of-fold probabilities; for mean or vote, the combination of those.
    Row i is ``ensemble.y_codes_[i]``'s training row.

    Parameters
    ----------
    ensemble : Ensemble
        Fitted (or loaded) with out-of-fold probabilities.

    Returns
    -------
    ndarray of shape (n_rows, n_classes)

    Raises
    ------
    ConfigError
        When the ensemble has none (a distilled student).

    Examples
    --------
    >>> from engine import Ensemble
    >>> from engine.testing import make_text_dataset
    >>> texts, y = make_text_dataset(n_classes=2, n_per_class=20)
    >>> ens = Ensemble({"nb": "tfidf-nb"}, combiner="stacking", cv=3, random_state=0)
    >>> ensemble_oof_proba(ens.fit(texts, y)).shape
    (40, 2)
    """
    require_oof(ensemble, "read the ensemble's out-of-fold probabilities")
    proba = getattr(ensemble, "oof_proba_", None)
    if proba is None:  # a model saved before oof.npz kept them: the same folds again
        proba = combined_oof_proba(ensemble.combiner_, ensemble.oof_, ensemble.y_codes_,
                                   cv=ensemble.cv, random_state=ensemble.random_state,
                                   features=ensemble.oof_features_)
        ensemble.oof_proba_ = proba
    return proba
