"""``Ensemble``: named members + a combiner, fitted on out-of-fold probabilities."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from engine import registry
from engine.bagging import FoldAverage
from engine.combiners.base import Combiner
from engine.constraints import Interval, check_param, validate_params
from engine.data import (
    check_folds,
    class_display_names,
    data_hash,
    encode_labels,
    label_column,
    numeric_columns,
    select_texts,
)
from engine.errors import ConfigError, ModelDirectoryError, did_you_mean
from engine.features import filling_on_predict
from engine.io.model_dir import ModelParts, model_errors, read_model, write_model
from engine.io.signing import trust_policy
from engine.metrics import classification_scores
from engine.oof import combined_oof_proba
from engine.parallel import check_backend, fit_backend, limit_threads
from engine.progress import fit_progress
from engine.protocol import ModelPluginProtocol
from engine.seeding import seeded
from engine.specs import MemberSpec, build_combiner, build_member, construct
from engine.thresholds import best_threshold, check_threshold

UNCHANGED = object()  # recombine(threshold=...) not given: keep the ensemble's
MEMBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _spec_instance(spec: Any, kind: str) -> Any:
    """The object a member or combiner spec stands for: the instance itself, or one built
    from its name and parameters (unseeded), so its parameters can be read and checked."""
    if isinstance(spec, str):
        spec = (spec, {})
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        name, params = spec
        cls = registry.get_plugin(name) if kind == "member" else registry.get_combiner(name)
        return construct(cls, params, f"{'plugin' if kind == 'member' else kind} '{name}'")
    if hasattr(spec, "get_params") and hasattr(spec, "set_params"):
        return spec
    raise ConfigError(f"a {kind} must be an instance, a registered name or (name, params); "
                      f"got {spec!r}")


def _spec_with(spec: Any, params: dict[str, Any], kind: str, label: str) -> Any:
    """``spec`` with ``params`` set: a name stays a ``(name, {params})`` spec, an instance
    is updated in place (as scikit-learn's meta-estimators do)."""
    instance = _spec_instance(spec, kind)
    valid = instance.get_params(deep=True)
    for key in params:
        if key not in valid and key.partition("__")[0] not in valid:
            shallow = instance.get_params(deep=False)
            raise ConfigError(f"invalid parameter '{key}' for {label} "
                              f"({type(instance).__name__}){did_you_mean(key, shallow)}; its "
                              f"parameters: {', '.join(sorted(shallow))}")
    if instance is spec or any("__" in key for key in params):
        return instance.set_params(**params)
    name, old = (spec, {}) if isinstance(spec, str) else spec
    return (name, {**dict(old), **params})


def fit_fold(job: tuple[str, int | None], member: Any, texts: list[str], codes: np.ndarray,
             train: np.ndarray | None, predict: np.ndarray | None, threads: int | None = None
             ) -> tuple[tuple[str, int | None], Any, np.ndarray | None, float]:
    """Fit a clone on the ``train`` rows (all when None); predict the ``predict`` rows."""
    limit_threads(threads)
    member = clone(member)
    rows = np.arange(len(texts)) if train is None else train
    start = time.perf_counter()
    member.fit([texts[i] for i in rows], codes[rows])
    seconds = time.perf_counter() - start
    if predict is None:
        return job, member, None, seconds
    with filling_on_predict():  # held-out folds are training texts: worth caching
        proba = member.predict_proba([texts[i] for i in predict])
    return job, member, proba, seconds


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
    member_text : dict of str to (str or list of str), default=None
        Columns for particular members, overriding ``text`` (for example
        ``{"word-lr": ["keyword", "text"]}``).
    fill_na : str or None, default=None
        Replacement for missing texts; missing texts are an error when None.
    n_jobs : int or None, default=None
        Fit members and folds in parallel with joblib (-1: all cores). Each
        worker process gets cores / n_jobs threads (TensorFlow included).
    backend : {"loky", "threading", "dask"} or None, default=None
        joblib's backend for those fits; ``"dask"`` runs them on the
        dask.distributed cluster at ``scheduler``.
    scheduler : str or None, default=None
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    threshold : str, float or None, default=None
        Binary tasks only. A metric name (``"f1"``, ``"accuracy"``,
        ``"balanced_accuracy"``, ``"mcc"``) chooses the decision threshold on the
        combined out-of-fold probabilities to maximise it; a number fixes it;
        None predicts the most probable class.
    verbose : bool, default=False
        Show a progress bar over members x folds on a terminal.
    member_cv : dict of str to int, default=None
        Fewer (or more) folds for particular members, e.g. ``{"bert": 3}`` for
        an expensive one; the others use ``cv``.
    refit : bool or dict of str to bool, default=True
        Refit members on all rows after their folds. A member with
        ``refit=False`` is predicted by the average of its fold models
        (``fold-average``): one fit fewer, but K forward passes per prediction.
    drop_label_issues : bool, default=False
        After the out-of-fold pass, audit the labels (:meth:`label_issues`:
        likely mislabelled rows and disputed duplicates) and fit the members
        and the combiner without the flagged rows. The members are fitted once
        more on the kept rows; the combiner learns from the kept rows' existing
        out-of-fold probabilities (no second cross-validation). ``training_``
        (and the manifest) records how many rows were dropped and why.
    class_names : list of str, dict or None, default=None
        Names for the classes in reports, leaderboards and ``GET /model``
        (for integer labels, as Hugging Face's ``id2label``): a list in sorted
        label order, or a dict of label -> name. Predictions keep the labels.

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
        Seconds each member took to fit on all rows (for a member with
        ``refit=False``, the sum over its fold models).
    threshold_ : float or None
        The decision threshold on the probability of ``classes_[1]``, or None
        (argmax). A tuned threshold is chosen on the same out-of-fold rows that
        ``scores_["ensemble"]`` is computed on, so that score is optimistic.
    kept_ : ndarray of bool or None
        With ``drop_label_issues``, the training rows the members and combiner
        were fitted on (``oof_`` and ``y_codes_`` still cover every row); None
        when every row was kept.

    Examples
    --------
    >>> from engine import Ensemble
    >>> ens = Ensemble({"nb": "tfidf-nb", "lr": ("tfidf-lr", {"C": 4.0})},
    ...                combiner="stacking", cv=3, random_state=0)
    >>> texts = ["forest fire", "flood warning", "nice lunch", "great game"] * 6
    >>> ens.fit(texts, [1, 1, 0, 0] * 6).predict(["fire and flood"]).tolist()
    [1]
    """

    _constraints: ClassVar[dict[str, list[Any]]] = {"cv": [Interval(int, 2, None)],
                                                    "drop_label_issues": [bool]}

    def __init__(self, members: Mapping[str, MemberSpec], combiner: Any = "mean", *, cv: int = 5,
                 random_state: int | None = None, text: str | Sequence[str] = "text",
                 member_text: Mapping[str, str | Sequence[str]] | None = None,
                 fill_na: str | None = None, n_jobs: int | None = None,
                 threshold: str | float | None = None, verbose: bool = False,
                 backend: str | None = None, scheduler: str | None = None,
                 member_cv: Mapping[str, int] | None = None,
                 refit: bool | Mapping[str, bool] = True,
                 drop_label_issues: bool = False,
                 class_names: Sequence[str] | Mapping[Any, str] | None = None) -> None:
        self.members = members
        self.combiner = combiner
        self.cv = cv
        self.random_state = random_state
        self.text = text
        self.member_text = member_text
        self.fill_na = fill_na
        self.n_jobs = n_jobs
        self.threshold = threshold
        self.verbose = verbose
        self.backend = backend
        self.scheduler = scheduler
        self.member_cv = member_cv
        self.refit = refit
        self.drop_label_issues = drop_label_issues
        self.class_names = class_names

    # -- parameters ----------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters; with ``deep``, also each member's and the combiner's.

        As in scikit-learn's VotingClassifier, ``<member>`` is the member and
        ``<member>__<param>`` its parameters (``nb__alpha``), for
        :class:`~sklearn.model_selection.GridSearchCV` and friends; the
        combiner's are ``combiner__<param>``. A member given by name
        (``"tfidf-nb"`` or ``("tfidf-lr", {...})``) is built to read them, so
        it is as searchable as an instance.

        Parameters
        ----------
        deep : bool, default=True

        Returns
        -------
        dict of str to object

        Examples
        --------
        >>> ens = Ensemble({"nb": "tfidf-nb", "lr": ("tfidf-lr", {"C": 4.0})})
        >>> params = ens.get_params()
        >>> params["nb__alpha"], params["lr__C"]
        (1.0, 4.0)
        >>> ens.set_params(nb__alpha=0.1).members["nb"]
        ('tfidf-nb', {'alpha': 0.1})
        """
        params = super().get_params(deep=False)
        if not deep:
            return params
        parts = dict(self.members) if isinstance(self.members, Mapping) else {}
        for name, spec, kind in [*[(n, s, "member") for n, s in parts.items()],
                                 ("combiner", self.combiner, "combiner")]:
            instance = _spec_instance(spec, kind)
            if kind == "member":
                params[name] = instance
            params.update({f"{name}__{key}": value
                           for key, value in instance.get_params(deep=True).items()})
        return params

    def set_params(self, **params: Any) -> Ensemble:
        """Set parameters, the members' too (``nb__alpha=0.1``, ``nb=<plugin>``); returns self.

        A member given by name stays a ``(name, {params})`` spec; a member
        given as an instance is updated in place, as in scikit-learn.
        """
        own = super().get_params(deep=False)
        for key in ("members", "combiner"):  # first: nested keys below refer to them
            if key in params:
                setattr(self, key, params.pop(key))
        members = dict(self.members) if isinstance(self.members, Mapping) else {}
        nested: dict[str, dict[str, Any]] = {}
        for key in list(params):
            head, sep, rest = key.partition("__")
            if sep and (head in members or head == "combiner"):
                nested.setdefault(head, {})[rest] = params.pop(key)
            elif not sep and head in members and head not in own:
                members[head] = params.pop(key)
        for head, sub in nested.items():
            if head == "combiner":
                self.combiner = _spec_with(self.combiner, sub, "combiner", "the combiner")
            else:
                members[head] = _spec_with(members[head], sub, "member", f"member '{head}'")
        if members:
            self.members = members
        for key, value in params.items():
            if key not in own:
                hint = did_you_mean(key, [*own, *members])
                raise ConfigError(f"invalid parameter '{key}' for Ensemble{hint}; a member's "
                                  f"parameters are '<member>__<param>' (members: "
                                  f"{', '.join(members) or 'none'})")
            setattr(self, key, value)
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # texts: a sequence of strings (or a DataFrame of text columns), not a numeric matrix
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        return tags

    # -- fitting -----------------------------------------------------------------

    def _checked_members(self) -> dict[str, ModelPluginProtocol]:
        """Check every parameter, then build the (unfitted, seeded) members."""
        if not isinstance(self.members, Mapping) or not self.members:
            raise ConfigError("members must be a non-empty dict of name -> plugin")
        own = super().get_params(deep=False)
        for name in self.members:
            if not isinstance(name, str) or not MEMBER_NAME.match(name) or "__" in name:
                raise ConfigError(f"member name {name!r} must be 1-64 letters, digits, '.', "
                                  f"'_' or '-', starting with a letter or digit, without '__'")
            if name in own:  # <member>__<param> would be ambiguous
                raise ConfigError(f"member name '{name}' is an Ensemble parameter; rename the "
                                  f"member")
        validate_params(self, self._constraints)
        for key in ("member_text", "member_cv", *(["refit"] if isinstance(self.refit, Mapping)
                                                   else [])):
            unknown = sorted(set(getattr(self, key) or {}) - set(self.members))
            if unknown:
                raise ConfigError(f"{key} names {unknown}, which are not members "
                                  f"({', '.join(self.members)})")
        for name, folds in (self.member_cv or {}).items():
            check_param(f"member_cv['{name}']", folds, self._constraints["cv"])
        refits = self.refit.values() if isinstance(self.refit, Mapping) else [self.refit]
        if not all(isinstance(r, bool) for r in refits):
            raise ConfigError(f"refit must be True, False or a dict of member -> bool, got "
                              f"{self.refit!r}")
        check_threshold(self.threshold)
        check_backend(self.backend, self.scheduler)
        return {name: seeded(build_member(spec), self.random_state)
                for name, spec in self.members.items()}

    def fit(self, X: Any, y: Any) -> Ensemble:
        """Fit every member with K-fold out-of-fold predictions, then the combiner.

        Parameters
        ----------
        X : sequence of str or DataFrame
            Texts, or a DataFrame holding the ``text`` column(s).
        y : array-like of shape (n_rows,), or str
            Labels: strings, integers or booleans; two classes or more. With X a
            DataFrame, the name of its label column will do (``fit(df, "topic")``).

        Returns
        -------
        self : Ensemble
        """
        members = self._checked_members()
        combiner = build_combiner(self.combiner, self.random_state)
        y = label_column(X, y)
        texts = self.member_texts(X, members)
        codes, classes = encode_labels(y, len(next(iter(texts.values()))))
        class_display_names(classes, self.class_names)  # wrong names fail before the fits
        if self.threshold is not None and len(classes) != 2:
            raise ConfigError(f"threshold={self.threshold!r} needs two classes, the labels "
                              f"have {len(classes)}; leave threshold=None")
        features = numeric_columns(X, getattr(combiner, "passthrough", None))
        splits = self.folds(codes, classes)
        n_folds = {name: len(splits[name]) for name in members}
        refit = {name: self.refit.get(name, True) if isinstance(self.refit, Mapping)
                 else self.refit for name in members}

        drop = self.drop_label_issues  # then the members are refitted after the audit
        jobs = [(name, fold) for name in members
                for fold in [*range(n_folds[name]), *([None] if refit[name] and not drop
                                                      else [])]]
        oof = np.zeros((len(members), len(codes), len(classes)))
        self.members_, self.fit_seconds_ = {}, {}
        fold_models: dict[str, dict[int, Any]] = {name: {} for name in members}
        fold_seconds = dict.fromkeys(members, 0.0)
        for (name, fold), fitted, proba, seconds in self._run_fits(jobs, members, texts, codes,
                                                                   splits):
            if fold is None:
                self.members_[name], self.fit_seconds_[name] = fitted, seconds
            else:
                oof[list(members).index(name), splits[name][fold][1]] = proba
                if not refit[name]:
                    fold_models[name][fold] = fitted
                    fold_seconds[name] += seconds
        self.classes_, self.y_codes_, self.oof_ = classes, codes, oof
        self.oof_features_ = features
        self.training_ = {"n_rows": len(codes),
                          "sha256": data_hash(next(iter(texts.values())), codes)}
        self.kept_ = None
        if drop:
            self._drop_label_issues(X, members, texts, splits, refit, fold_models, fold_seconds,
                                    combiner)
        for name in members:
            if not refit[name]:  # bagged: the fold models' average predicts
                models = [fold_models[name][f] for f in range(n_folds[name])]
                self.members_[name] = FoldAverage.from_fitted(models, self.random_state)
                self.fit_seconds_[name] = fold_seconds[name]
        self.members_ = {name: self.members_[name] for name in members}
        self._fit_combiner(combiner)
        # Not saved: a distill() in this process needs no X, y again (engine.distill).
        self._training_data = (X, y)
        return self

    def _run_fits(self, jobs: list[tuple[str, int | None]], members: dict[str, Any],
                  texts: dict[str, list[str]], codes: np.ndarray,
                  splits: dict[str, list[tuple[np.ndarray, np.ndarray]]],
                  rows: np.ndarray | None = None) -> Any:
        """Fit ``jobs`` ((member, fold), fold None: all rows) in parallel; yield each result.

        With ``rows``, every fit uses only those of its training rows and
        predicts nothing (the refits after dropping label issues).
        """
        def train_of(name: str, fold: int | None) -> np.ndarray | None:
            train = None if fold is None else splits[name][fold][0]
            if rows is None:
                return train
            return rows if train is None else np.intersect1d(train, rows)

        with fit_backend(self.backend, self.scheduler, self.n_jobs) as (n_jobs, threads), \
                fit_progress(len(jobs), self.verbose) as bar:
            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(fit_fold)(job, members[name], texts[name], codes, train_of(name, fold),
                                  None if fold is None or rows is not None
                                  else splits[name][fold][1], threads)
                for job in jobs for name, fold in [job])
            for result in results:
                (name, fold) = result[0]
                yield result
                bar.advance(f"{name} {'all rows' if fold is None else f'fold {fold + 1}'}")

    def _drop_label_issues(self, X: Any, members: dict[str, Any], texts: dict[str, list[str]],
                           splits: dict[str, list[tuple[np.ndarray, np.ndarray]]],
                           refit: dict[str, bool], fold_models: dict[str, dict[int, Any]],
                           fold_seconds: dict[str, float], combiner: Combiner) -> None:
        """Audit the labels on the out-of-fold pass, then fit the members without the flagged
        rows (the combiner is fitted on the kept rows by the caller)."""
        from engine.label_audit import audit, issue_rows, reason_counts

        self._fit_combiner(combiner, list(members))  # its output over every row is judged
        table = audit(self.oof_proba_, self.y_codes_, self.classes_,
                      texts=select_texts(X, self.text, self.fill_na),
                      keep_per_class=max(self.cv, *(self.member_cv or {}).values(), 2))
        dropped = issue_rows(table)
        kept = np.ones(len(self.y_codes_), dtype=bool)
        kept[dropped] = False
        self.kept_ = kept if len(dropped) else None
        self.training_["label_issues"] = {
            "dropped": len(dropped), "kept": int(kept.sum()),
            "by_reason": reason_counts(table, dropped), "method": table.attrs["method"]}
        jobs = [(name, fold) for name in members
                for fold in ([None] if refit[name] else range(len(splits[name])))]
        fold_seconds.update({name: 0.0 for name in members if not refit[name]})
        for (name, fold), fitted, _, seconds in self._run_fits(jobs, members, texts,
                                                                self.y_codes_, splits,
                                                                rows=np.flatnonzero(kept)):
            if fold is None:
                self.members_[name], self.fit_seconds_[name] = fitted, seconds
            else:  # a bagged member's fold model, without the dropped rows
                fold_seconds[name] += seconds
                fold_models[name][fold] = fitted

    def folds(self, codes: np.ndarray, classes: np.ndarray | None = None
              ) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
        """Each member's (training rows, held-out rows) pairs: the folds of its out-of-fold
        probabilities (``member_cv`` or ``cv`` of them, shuffled with ``random_state``).

        Parameters
        ----------
        codes : ndarray of int, shape (n_rows,)
            Class codes (see :func:`engine.data.encode_labels`).
        classes : ndarray or None
            The original labels, named in the error when a class has too few rows.

        Returns
        -------
        dict of str to list of (ndarray, ndarray)
            By member name, in member order.
        """
        n_folds = {name: (self.member_cv or {}).get(name, self.cv) for name in self.members}
        check_folds(codes, np.unique(codes) if classes is None else classes,
                    max(n_folds.values()))
        by_k = {k: list(StratifiedKFold(k, shuffle=True, random_state=self.random_state)
                        .split(np.zeros(len(codes)), codes)) for k in set(n_folds.values())}
        return {name: by_k[k] for name, k in n_folds.items()}

    def _fit_combiner(self, combiner: Combiner, names: list[str] | None = None) -> None:
        """Fit ``combiner`` on the kept rows' out-of-fold probabilities (all rows unless labels
        were dropped) and score it; ``oof_proba_`` always covers every training row."""
        names = list(self.members_) if names is None else names
        kept = getattr(self, "kept_", None)
        rows = slice(None) if kept is None else kept
        oof, codes = self.oof_[:, rows], self.y_codes_[rows]
        features = None if self.oof_features_ is None else self.oof_features_[rows]
        self.combiner_ = combiner.fit(oof, codes, names, features)
        self.scores_ = {name: classification_scores(codes, oof[i])
                        for i, name in enumerate(names)}
        honest = combined_oof_proba(combiner, oof, codes, cv=self.cv,
                                    random_state=self.random_state, features=features)
        if kept is None:
            self.oof_proba_ = honest
        elif not hasattr(self, "oof_proba_"):  # recombined: the new combiner's view of every row
            self.oof_proba_ = combined_oof_proba(combiner, self.oof_, self.y_codes_, cv=self.cv,
                                                 random_state=self.random_state,
                                                 features=self.oof_features_)
        if isinstance(self.threshold, str):
            self.threshold_ = best_threshold(codes, honest[:, 1], self.threshold)
        else:
            self.threshold_ = None if self.threshold is None else float(self.threshold)
        pred = None if self.threshold_ is None else self._decide(honest)
        self.scores_["ensemble"] = classification_scores(codes, honest, pred)

    def recombine(self, combiner: Any, members: Sequence[str] | None = None, *,
                  threshold: str | float | None | object = UNCHANGED) -> Ensemble:
        """A new fitted ensemble with another combiner or subset of members, no refitting.

        Parameters
        ----------
        combiner : str, (str, dict) or Combiner
        members : list of str or None
            Keep only these members; all when None.
        threshold : str, float or None, optional
            The new ensemble's ``threshold`` (a metric to tune it for on the
            out-of-fold rows, a number, or None for the most probable class);
            this one's when not given.

        Returns
        -------
        Ensemble
            Shares the fitted members with this one.
        """
        check_is_fitted(self)
        if threshold is not UNCHANGED:
            check_threshold(threshold)  # type: ignore[arg-type]
            if threshold is not None and len(self.classes_) != 2:
                raise ConfigError(f"threshold={threshold!r} needs two classes, this ensemble "
                                  f"has {len(self.classes_)}; leave threshold=None")
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
        new = clone(self).set_params(
            members={m: self.members[m] for m in keep}, combiner=combiner,
            member_text={m: c for m, c in (self.member_text or {}).items() if m in keep} or None,
            **({} if threshold is UNCHANGED else {"threshold": threshold}))
        new._restore(ModelParts(
            members={m: self.members_[m] for m in keep},
            fit_seconds={m: self.fit_seconds_[m] for m in keep}, classes=self.classes_,
            oof=self.oof_[index], y_codes=self.y_codes_,
            oof_features=self.oof_features_ if wanted else None, training=self.training_,
            kept=getattr(self, "kept_", None)))
        new._fit_combiner(new_combiner)
        return new

    def distill(self, student: MemberSpec = None, *, X: Any = None, y: Any = None,
                unlabeled: Any = None, unlabeled_text: str | None = None,
                text: str | Sequence[str] | None = None, temperature: float = 1.0,
                label_weight: float = 0.0, cv: int | None = None) -> Ensemble:
        """A fast single-member ensemble that learned this ensemble's probabilities.

        The student learns soft targets: this ensemble's own out-of-fold
        probabilities on its training rows (for stacking, the meta-learner's
        cross-validated output; never the refitted members' in-sample
        predictions, which are overconfident there), and its predictions on
        ``unlabeled`` texts. See :mod:`engine.distill`.

        Parameters
        ----------
        student : member spec, default=None
            A plugin name, ``(name, {params})`` or instance, as a member;
            when None, ``("tfidf-lr", {"C": 16.0})``
            (:data:`engine.distill.DEFAULT_STUDENT`, chosen by measurement).
            Plugins with ``fit_soft(X, P)`` learn the probabilities; others
            learn the most probable class (with a warning).
        X, y : training data, default=None
            The rows this ensemble was fitted on, checked against the hash
            its manifest keeps. Not needed right after :meth:`fit` in the
            same process; needed for a loaded model.
        unlabeled : DataFrame or sequence of str, default=None
            Extra texts, such as Kaggle's test.csv: the student learns this
            ensemble's predictions on them. Their labels, if any, are never read.
        unlabeled_text : str, default=None
            The column of ``unlabeled`` holding the texts, when it is not the
            one this ensemble reads.
        text : str or list of str, default=None
            Column(s) the student reads (several are joined by spaces); when
            None, every column this ensemble's members read.
        temperature : float, default=1.0
            Targets are raised to ``1 / temperature`` and renormalised: below
            1 sharpens them, above 1 flattens them. 1 keeps the out-of-fold
            probabilities as they are (measured best in benchmarks/results/distill.md).
        label_weight : float, default=0.0
            Mix the true one-hot labels into the training rows' targets with
            this weight.
        cv : int or None, default=None
            Also estimate the student's scores on held-out rows: K more fits,
            each on the other folds' targets (the unlabeled rows in every
            fold), scored against the true labels. Kept in ``scores_`` beside
            the teacher's out-of-fold scores. None or 0 skips it.

        Returns
        -------
        Ensemble
            Fitted, with one member named ``"student"`` and a ``mean``
            combiner; ``distilled_from_`` describes the teacher, and is saved
            in the manifest.

        Examples
        --------
        >>> from engine import Ensemble
        >>> from engine.testing import make_text_dataset
        >>> texts, y = make_text_dataset(n_classes=2, n_per_class=20)
        >>> teacher = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking",
        ...                    cv=3, random_state=0).fit(texts, y)
        >>> student = teacher.distill("tfidf-lr", unlabeled=["smoke and fire", "pizza night"])
        >>> list(student.members_), student.predict(["flood water"]).tolist()
        (['student'], [1])
        """
        from engine.distill import DEFAULT_STUDENT, distill

        return distill(self, DEFAULT_STUDENT if student is None else student, X=X, y=y,
                       unlabeled=unlabeled, unlabeled_text=unlabeled_text, text=text,
                       temperature=temperature, label_weight=label_weight, cv=cv)

    # -- the model directory -----------------------------------------------------

    def _parts(self) -> ModelParts:
        """This fitted ensemble as the parts the model directory stores."""
        check_is_fitted(self)
        return ModelParts(
            members=self.members_, fit_seconds=self.fit_seconds_, classes=self.classes_,
            oof=self.oof_, y_codes=self.y_codes_, oof_features=self.oof_features_,
            training=self.training_, combiner=self.combiner_, scores=self.scores_,
            threshold=getattr(self, "threshold_", None),
            oof_proba=getattr(self, "oof_proba_", None), kept=getattr(self, "kept_", None),
            distilled_from=getattr(self, "distilled_from_", None),
            settings={k: v for k, v in self.get_params(deep=False).items()
                      if k not in ("members", "combiner")})

    def _restore(self, parts: ModelParts) -> Ensemble:
        """Set the fitted attributes from ``parts`` (the combiner's only when they have one)."""
        self.members_ = dict(parts.members)
        self.fit_seconds_ = dict(parts.fit_seconds)
        self.classes_, self.y_codes_, self.oof_ = parts.classes, parts.y_codes, parts.oof
        self.oof_features_ = parts.oof_features
        self.training_ = dict(parts.training)
        self.kept_ = parts.kept
        if parts.combiner is not None:
            self.combiner_, self.scores_ = parts.combiner, parts.scores
            self.threshold_ = parts.threshold
            if parts.oof_proba is not None:
                self.oof_proba_ = parts.oof_proba
        if parts.manifest is not None:
            self.manifest_ = parts.manifest
            if parts.manifest.get("distilled_from"):
                self.distilled_from_ = parts.manifest["distilled_from"]
        return self

    # -- prediction ----------------------------------------------------------------

    def member_texts(self, X: Any, members: Sequence[str] | None = None) -> dict[str, list[str]]:
        """The texts each member reads from X (its ``member_text`` columns or ``text``)."""
        names = list(self.members_ if members is None else members)
        overrides = self.member_text or {}
        by_columns: dict[Any, list[str]] = {}
        texts = {}
        for name in names:
            columns = overrides.get(name, self.text)
            key = columns if isinstance(columns, str) else tuple(columns)
            if key not in by_columns:
                by_columns[key] = select_texts(X, columns, self.fill_na)
            texts[name] = by_columns[key]
        return texts

    def member_proba(self, X: Any) -> dict[str, np.ndarray]:
        """Each member's probabilities, shape (n_rows, n_classes), by member name."""
        check_is_fitted(self)
        texts = self.member_texts(X)
        return {name: member.predict_proba(texts[name]) for name, member in self.members_.items()}

    def class_labels(self) -> list[str]:
        """The classes' names in code order: ``class_names`` when given, else the labels.

        Examples
        --------
        >>> ens = Ensemble({"nb": "tfidf-nb"}, cv=2, class_names=["ham", "spam"])
        >>> ens.fit(["win cash", "see you", "cash prize", "lunch?"], [1, 0, 1, 0]).class_labels()
        ['ham', 'spam']
        """
        check_is_fitted(self)
        return class_display_names(self.classes_, self.class_names)

    def _decide(self, proba: np.ndarray) -> np.ndarray:
        """Class codes from combined probabilities, with the threshold when there is one."""
        return (proba[:, 1] >= self.threshold_).astype(np.int64)

    def _predict_codes(self, P: np.ndarray, features: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Codes and probabilities from all members' probabilities ``P`` (for evaluation)."""
        proba = self.combiner_.predict_proba(P, features)
        if getattr(self, "threshold_", None) is not None:
            return self._decide(proba), proba
        return self.combiner_.predict(P, features), proba

    def _predict(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Codes and probabilities, running only the members (and rows) the combiner needs."""
        check_is_fitted(self)
        texts = self.member_texts(X)
        names = list(self.members_)
        n_rows = len(texts[names[0]])

        def proba_of(m: int, rows: np.ndarray | None) -> np.ndarray:
            member_texts = texts[names[m]]
            if rows is not None:
                member_texts = [member_texts[i] for i in rows]
            return self.members_[names[m]].predict_proba(member_texts)

        features = numeric_columns(X, getattr(self.combiner_, "passthrough", None))
        codes, proba = self.combiner_.predict_from(proba_of, n_rows, features)
        if getattr(self, "threshold_", None) is not None:
            codes = self._decide(proba)
        return codes, proba

    def predict_proba(self, X: Any) -> np.ndarray:
        """Combined probabilities, shape (n_rows, n_classes); column k is ``classes_[k]``."""
        return self._predict(X)[1]

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels, in the type of the training labels (``threshold_`` applied)."""
        return self.classes_[self._predict(X)[0]]

    def predict_with_proba(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities from one pass over the members."""
        codes, proba = self._predict(X)
        return self.classes_[codes], proba

    def label_issues(self, X: Any = None, y: Any = None, *, test: Any = None,
                     id: str | None = "id", method: str = "both",
                     rank_by: str = "self_confidence") -> Any:
        """Training rows whose label is likely wrong, most likely first.

        Confident learning (Northcutt et al., JAIR 2021) on the ensemble's own
        out-of-fold probabilities (for stacking, the combiner's cross-validated
        output) finds rows it confidently disputes; with the training texts,
        duplicates with conflicting labels; with test texts, training rows
        that reappear in the test set (see :mod:`engine.label_audit`). It
        refits nothing: it reads what the fit already computed.

        Parameters
        ----------
        X : sequence of str, DataFrame or None
            The training data the ensemble was fitted on, in the same order
            (checked against the stored hash). Needed for the texts, ids,
            duplicates and leakage; None judges the stored labels alone.
        y : array-like or None
            Its labels; None uses the stored ones.
        test : sequence of str, DataFrame or None
            Test texts (the ``text`` column of a DataFrame): training rows that
            (nearly) reappear there are listed as leakage. Needs X.
        id : str or None, default="id"
            A column of X to report as ``id``, when X has it.
        method : str, default="both"
            How confident learning chooses the rows (see
            :func:`engine.label_audit.flag_mislabelled`).
        rank_by : {"self_confidence", "normalized_margin"}, default="self_confidence"
            What ``score`` measures.

        Returns
        -------
        DataFrame
            One row per suspected training row: ``row`` (0-based position),
            ``id`` and ``text`` (with X), ``given``, ``suggested`` (in the
            labels' own type), ``score`` (in [0, 1], higher is more likely
            wrong), ``reason`` ("likely mislabelled", "conflicting duplicate",
            "near-duplicate in test"; several joined by "; "), ``detail``,
            ``duplicate_group`` (with X). ``attrs["counts"]`` counts rows by reason.

        Examples
        --------
        >>> from engine.testing import make_text_dataset
        >>> texts, y = make_text_dataset(n_classes=2, n_per_class=40)
        >>> y[:4] = 1 - y[:4]  # four wrong labels
        >>> ens = Ensemble({"lr": "tfidf-lr"}, cv=5, random_state=0).fit(texts, y)
        >>> ens.label_issues(texts)[["row", "given", "suggested", "reason"]]
           row  given  suggested              reason
        0    0      1          0  likely mislabelled
        1    1      1          0  likely mislabelled
        2    3      0          1  likely mislabelled
        """
        from engine.label_audit import label_issues

        check_is_fitted(self)
        return label_issues(self, X, y, test=test, id=id, method=method, rank_by=rank_by)

    def leaderboard(self, X: Any = None, y: Any = None,
                    combiners: Sequence[str] | None = None) -> Any:
        """One row per member and per combiner, best first.

        Parameters
        ----------
        X, y : labelled data, or None
            Score on this data; when None, score the stored out-of-fold
            probabilities (no prediction times then).
        combiners : list of str or None
            Combiners to compare besides the ensemble's own; every registered
            combiner when None.

        Returns
        -------
        DataFrame
            Indexed by model; columns ``kind``, scores, ``fit_s``, ``predict_ms_per_row``.
        """
        from engine.evaluation import evaluate, oof_leaderboard

        check_is_fitted(self)
        if X is None:
            return oof_leaderboard(self, combiners)
        if y is None:
            raise ConfigError("leaderboard(X, y) needs the true labels y with X")
        return evaluate(self, X, y, combiners)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "combiner_")

    # -- persistence -----------------------------------------------------------------

    def save(self, path: str | Path, data: dict[str, Any] | None = None) -> Ensemble:
        """Save atomically to the model directory ``path``; returns self.

        ``data`` is free-form JSON kept in the manifest (the CLI stores column names).
        """
        write_model(self._parts(), path, data)
        return self


def load_ensemble(path: str | Path, trusted: Iterable[str] = (), *, verify_with: Any = None,
                  require_signature: bool | None = None) -> Ensemble:
    """Load and verify a model directory written by :meth:`Ensemble.save`.

    Parameters
    ----------
    path : str or Path
        The model directory.
    trusted : list of str, default=()
        What the model directory may name and loading may then use, only
        for models from a source you trust: extra fully-qualified type names
        in its skops files, import strings, TF Hub handles (a SavedModel runs
        its own graph) and vectorizer token patterns, each named exactly.
    verify_with : key, str, Path or list of them, default=None
        Public key(s) whose signature the model must carry (``ensemble sign``):
        an Ed25519 key object, an OpenSSH or PEM public key as text, or the
        path of a file with one public key per line, or a
        :class:`~engine.io.signing.TrustPolicy` (keys and requirement together,
        as worker processes are handed them). Default: the file
        ``$ENSEMBLE_TRUSTED_KEYS`` names, if set.
    require_signature : bool, default=None
        Refuse an unsigned model. Default: True when ``verify_with`` is given,
        or keys come from ``$ENSEMBLE_TRUSTED_KEYS`` and ``$ENSEMBLE_REQUIRE_SIGNATURE``
        is not set off; else ``$ENSEMBLE_REQUIRE_SIGNATURE``.

    Returns
    -------
    Ensemble
        Fitted, ready to predict; ``signer_`` is the fingerprint of the key
        whose signature was verified (None for an unverified model).

    Raises
    ------
    ModelDirectoryError
        One line, for anything wrong with the directory: a changed or
        unexpected file, a link or special file, a value outside the
        manifest's schema, a size its stored bytes do not back, something it
        names that would run, or a model that fails a two-text prediction.
    """
    path = Path(path)
    parts = read_model(path, trusted, trust_policy(verify_with, require_signature))
    with model_errors(path):  # what a damaged manifest or state makes fail surfaces here
        ensemble = Ensemble(members=dict(parts.members), combiner=parts.combiner,
                            **parts.settings)._restore(parts)
        _check_restored(ensemble)
    ensemble.signer_ = parts.signer
    ensemble.manifest_sha256_ = parts.manifest_sha256  # a distilled student's teacher record
    return ensemble


def _check_restored(ensemble: Ensemble) -> None:
    """Refuse a loaded ensemble whose parts disagree, or that cannot predict two texts.

    Every file passed its own checks; this catches a consistent-looking lie
    (a meta-learner with other classes, out-of-fold arrays of another shape)
    at load, in one line, rather than at the user's first prediction.
    """
    import pandas as pd

    n_classes, n_members = len(ensemble.classes_), len(ensemble.members_)
    ensemble.class_labels()  # class_names that fit the classes
    oof, codes = ensemble.oof_, ensemble.y_codes_
    if oof.ndim != 3 or oof.shape[0] != n_members or oof.shape[2] != n_classes \
            or codes.shape != (oof.shape[1],) or not np.issubdtype(codes.dtype, np.integer) \
            or (len(codes) and not 0 <= codes.min() <= codes.max() < n_classes):
        raise ModelDirectoryError(f"oof.npz holds arrays of shapes {oof.shape} and "
                                  f"{codes.shape} for {n_members} members and {n_classes} "
                                  f"classes; the model directory is inconsistent")
    combined = getattr(ensemble, "oof_proba_", None)
    if combined is not None and (combined.shape != (oof.shape[1], n_classes)
                                 or not np.issubdtype(combined.dtype, np.floating)
                                 or not np.isfinite(combined).all()
                                 or (combined.size and not 0 <= combined.min() <= combined.max()
                                     <= 1)):
        raise ModelDirectoryError(f"oof.npz holds combined out-of-fold probabilities of shape "
                                  f"{combined.shape} for {oof.shape[1]} rows and {n_classes} "
                                  f"classes, or values outside [0, 1]; the model directory is "
                                  f"inconsistent")
    kept = ensemble.kept_
    if kept is not None and (kept.shape != codes.shape or kept.dtype != bool
                             or len(np.unique(codes[kept])) != n_classes):
        raise ModelDirectoryError(f"oof.npz holds a kept-rows mask of shape {kept.shape} "
                                  f"({kept.dtype}) for {len(codes)} rows, or one that drops a "
                                  f"whole class; the model directory is inconsistent")
    for name, member in ensemble.members_.items():
        if getattr(member, "n_classes_", n_classes) != n_classes:
            raise ModelDirectoryError(f"member '{name}' predicts {member.n_classes_!r} classes, "
                                      f"the model {n_classes}; the model directory is "
                                      f"inconsistent")
    if list(getattr(ensemble.combiner_, "members_", ensemble.members_)) != \
            list(ensemble.members_):
        raise ModelDirectoryError("the combiner was fitted on other members than the "
                                  "manifest lists; the model directory is inconsistent")
    columns = {c for spec in [ensemble.text, *(ensemble.member_text or {}).values()]
               for c in ([spec] if isinstance(spec, str) else spec)}
    probe = pd.DataFrame({c: ["forest fire near the river", "a calm day"] for c in columns})
    for column in getattr(ensemble.combiner_, "passthrough", None) or ():
        probe[column] = 0.0
    proba = ensemble.predict_proba(probe)
    if proba.shape != (2, n_classes) or not np.isfinite(proba).all() \
            or not np.allclose(proba.sum(axis=1), 1, atol=1e-3):
        raise ModelDirectoryError(f"the model's test prediction on two texts gave shape "
                                  f"{proba.shape} with rows not summing to 1; the model "
                                  f"directory is inconsistent")
