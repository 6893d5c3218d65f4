"""``Ensemble``: named members + a combiner, fitted on out-of-fold probabilities."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from engine import registry
from engine.combiners.base import Combiner
from engine.data import check_folds, data_hash, encode_labels, numeric_columns, select_texts
from engine.errors import ConfigError
from engine.metrics import classification_scores

MemberSpec = Any  # a plugin instance, a registry name, or (name, params)
MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def build_member(spec: MemberSpec) -> Any:
    """An unfitted plugin instance from an instance, ``"name"`` or ``("name", {params})``."""
    if isinstance(spec, str):
        spec = (spec, {})
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        name, params = spec
        cls = registry.get_plugin(name)
        try:
            return cls(**dict(params))
        except TypeError as exc:
            raise ConfigError(f"plugin '{name}': {exc}") from exc
    if all(hasattr(spec, m) for m in ("fit", "predict_proba", "save", "get_params")):
        return clone(spec)
    raise ConfigError(f"a member must be a plugin instance, a plugin name or (name, params); "
                      f"got {spec!r}")


def build_combiner(spec: Any, random_state: int | None = None) -> Combiner:
    """An unfitted combiner from an instance, ``"name"`` or ``("name", {params})``."""
    if isinstance(spec, str):
        spec = (spec, {})
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        name, params = spec
        try:
            combiner = registry.get_combiner(name)(**dict(params))
        except TypeError as exc:
            raise ConfigError(f"combiner '{name}': {exc}") from exc
    elif isinstance(spec, Combiner):
        combiner = clone(spec)
    else:
        raise ConfigError(f"combiner must be a name like 'stacking', (name, params) or a "
                          f"Combiner; got {spec!r}")
    return _seeded(combiner, random_state)


def _seeded(estimator: Any, random_state: int | None) -> Any:
    """Give ``estimator`` the ensemble's seed unless it has one of its own."""
    params = estimator.get_params(deep=False)
    if random_state is not None and "random_state" in params and params["random_state"] is None:
        estimator.set_params(random_state=random_state)
    return estimator


def _fit_one(member: Any, texts: list[str], codes: np.ndarray, train: np.ndarray | None,
             predict: np.ndarray | None) -> tuple[Any, np.ndarray | None, float]:
    """Fit a clone on the ``train`` rows (all when None); predict the ``predict`` rows."""
    member = clone(member)
    rows = np.arange(len(texts)) if train is None else train
    start = time.perf_counter()
    member.fit([texts[i] for i in rows], codes[rows])
    seconds = time.perf_counter() - start
    proba = None if predict is None else member.predict_proba([texts[i] for i in predict])
    return member, proba, seconds


class Ensemble(ClassifierMixin, BaseEstimator):
    """An ensemble of text classifiers combined on out-of-fold probabilities.

    ``fit`` computes K-fold out-of-fold probabilities for every member on
    clones, fits the combiner on them, then refits each member on all rows.
    The out-of-fold probabilities are kept, so :meth:`recombine` can try
    another combiner or subset of members without refitting anything.

    Parameters
    ----------
    members : dict of str to member
        Member name -> plugin instance, registry name (``"tfidf-nb"``) or
        ``(name, {params})``.
    combiner : str, (str, dict) or Combiner, default="mean"
        ``"mean"``, ``"vote"``, ``"stacking"`` or any registered combiner.
    cv : int, default=5
        Folds of the stratified K-fold that produces out-of-fold probabilities.
    random_state : int or None, default=None
        Seeds the folds and every member and combiner that has no seed of its own.
    text : str or list of str, default="text"
        The column(s) to read when X is a DataFrame; several are joined by spaces.
    fill_na : str or None, default=None
        Replacement for missing texts; missing texts are an error when None.
    n_jobs : int or None, default=None
        Fit members and folds in parallel with joblib.

    Attributes
    ----------
    classes_ : ndarray
        The original labels, in code order.
    members_ : dict of str to plugin
        Each member refitted on all rows.
    combiner_ : Combiner
        Fitted on the out-of-fold probabilities.
    oof_ : ndarray of shape (n_members, n_rows, n_classes)
        Out-of-fold probabilities of every member.
    y_codes_ : ndarray of shape (n_rows,)
        Training labels as codes, kept with ``oof_``.
    scores_ : dict
        Out-of-fold validation scores per member and for the ensemble.
    fit_seconds_ : dict of str to float
        Seconds each member took to fit on all rows.

    Examples
    --------
    >>> from engine import Ensemble
    >>> ens = Ensemble({"nb": "tfidf-nb", "lr": ("tfidf-lr", {"C": 4.0})},
    ...                combiner="stacking", cv=3, random_state=0)
    >>> texts = ["forest fire", "flood warning", "nice lunch", "great game"] * 6
    >>> ens.fit(texts, [1, 1, 0, 0] * 6).predict(["fire and flood"]).tolist()
    [1]
    """

    def __init__(self, members: Mapping[str, MemberSpec], combiner: Any = "mean", cv: int = 5,
                 random_state: int | None = None, text: str | Sequence[str] = "text",
                 fill_na: str | None = None, n_jobs: int | None = None) -> None:
        self.members = members
        self.combiner = combiner
        self.cv = cv
        self.random_state = random_state
        self.text = text
        self.fill_na = fill_na
        self.n_jobs = n_jobs

    # -- fitting -----------------------------------------------------------------

    def _validate_params(self) -> dict[str, Any]:
        if not isinstance(self.members, Mapping) or not self.members:
            raise ConfigError("members must be a non-empty dict of name -> plugin")
        for name in self.members:
            if not isinstance(name, str) or not MEMBER_NAME.match(name):
                raise ConfigError(f"member name {name!r} must be 1-64 letters, digits, '.', "
                                  f"'_' or '-', starting with a letter or digit")
        if isinstance(self.cv, bool) or not isinstance(self.cv, int) or self.cv < 2:
            raise ConfigError(f"cv must be an integer >= 2, got {self.cv!r}")
        return {name: _seeded(build_member(spec), self.random_state)
                for name, spec in self.members.items()}

    def fit(self, X: Any, y: Any) -> Ensemble:
        """Fit every member with K-fold out-of-fold predictions, then the combiner.

        Parameters
        ----------
        X : sequence of str or DataFrame
            Texts, or a DataFrame holding the ``text`` column(s).
        y : array-like of shape (n_rows,)
            Labels: strings, integers or booleans; two classes or more.

        Returns
        -------
        self : Ensemble
        """
        members = self._validate_params()
        combiner = build_combiner(self.combiner, self.random_state)
        texts = select_texts(X, self.text, self.fill_na)
        codes, classes = encode_labels(y, len(texts))
        check_folds(codes, classes, self.cv)
        features = numeric_columns(X, getattr(combiner, "passthrough", None))
        folds = list(StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
                     .split(np.zeros(len(codes)), codes))

        jobs = [(name, fold) for name in members for fold in [*range(len(folds)), None]]
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_one)(members[name], texts, codes,
                              None if fold is None else folds[fold][0],
                              None if fold is None else folds[fold][1])
            for name, fold in jobs)

        oof = np.zeros((len(members), len(texts), len(classes)))
        self.members_, self.fit_seconds_ = {}, {}
        for (name, fold), (fitted, proba, seconds) in zip(jobs, results, strict=True):
            if fold is None:
                self.members_[name], self.fit_seconds_[name] = fitted, seconds
            else:
                oof[list(members).index(name), folds[fold][1]] = proba
        self.classes_, self.y_codes_, self.oof_ = classes, codes, oof
        self.oof_features_ = features
        self.training_ = {"n_rows": len(texts), "sha256": data_hash(texts, codes)}
        self._fit_combiner(combiner)
        return self

    def _fit_combiner(self, combiner: Combiner) -> None:
        names = list(self.members_)
        self.combiner_ = combiner.fit(self.oof_, self.y_codes_, names, self.oof_features_)
        cv = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        self.scores_ = {name: classification_scores(self.y_codes_, self.oof_[i])
                        for i, name in enumerate(names)}
        honest = combiner.oof_predict_proba(self.oof_, self.y_codes_, cv, self.oof_features_)
        self.scores_["ensemble"] = classification_scores(self.y_codes_, honest)

    def recombine(self, combiner: Any, members: Sequence[str] | None = None) -> Ensemble:
        """A new fitted ensemble with another combiner or subset of members, no refitting.

        Parameters
        ----------
        combiner : str, (str, dict) or Combiner
        members : list of str or None
            Keep only these members; all when None.

        Returns
        -------
        Ensemble
            Shares the fitted members with this one.
        """
        check_is_fitted(self)
        names = list(self.members_)
        keep = names if members is None else list(members)
        unknown = [m for m in keep if m not in names]
        if unknown or not keep:
            raise ConfigError(f"cannot recombine members {unknown or keep}; "
                              f"this ensemble has {names}")
        new_combiner = build_combiner(combiner, self.random_state)
        wanted = getattr(new_combiner, "passthrough", None)
        old = getattr(self.combiner_, "passthrough", None)
        if wanted and list(wanted) != list(old or []):
            raise ConfigError("the new combiner's passthrough columns were not stored at fit "
                              "time; refit the ensemble with them")
        index = [names.index(m) for m in keep]
        new = clone(self).set_params(members={m: self.members[m] for m in keep},
                                     combiner=combiner)
        new.members_ = {m: self.members_[m] for m in keep}
        new.fit_seconds_ = {m: self.fit_seconds_[m] for m in keep}
        new.classes_, new.y_codes_, new.oof_ = self.classes_, self.y_codes_, self.oof_[index]
        new.oof_features_ = self.oof_features_ if wanted else None
        new.training_ = dict(self.training_)
        new._fit_combiner(new_combiner)
        return new

    # -- prediction ----------------------------------------------------------------

    def member_proba(self, X: Any) -> dict[str, np.ndarray]:
        """Each member's probabilities, shape (n_rows, n_classes), by member name."""
        check_is_fitted(self)
        texts = select_texts(X, self.text, self.fill_na)
        return {name: member.predict_proba(texts) for name, member in self.members_.items()}

    def _combine(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        P = np.stack(list(self.member_proba(X).values()))
        return P, numeric_columns(X, getattr(self.combiner_, "passthrough", None))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Combined probabilities, shape (n_rows, n_classes); column k is ``classes_[k]``."""
        return self.combiner_.predict_proba(*self._combine(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels, in the type of the training labels."""
        return self.classes_[self.combiner_.predict(*self._combine(X))]

    def predict_with_proba(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities from one pass over the members."""
        P, features = self._combine(X)
        return (self.classes_[self.combiner_.predict(P, features)],
                self.combiner_.predict_proba(P, features))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "combiner_")

    # -- persistence -----------------------------------------------------------------

    def save(self, path: str | Path, data: dict[str, Any] | None = None) -> Ensemble:
        """Save atomically to the model directory ``path``; returns self.

        ``data`` is free-form JSON kept in the manifest (the CLI stores column names).
        """
        from engine.persistence import save_ensemble

        save_ensemble(self, path, data)
        return self
