"""``tune``: search each member's parameters with Optuna, on the ensemble's own folds.

One study per member (``<study>:<member>``) in one storage, each stamped with
what it was made from (:mod:`~engine.tuning.storage`). A run first scores
every member as configured (the first, enqueued trial of its study), then the
members take turns with TPE until the budget or the cap
(:mod:`~engine.tuning.members`); folds report intermediate scores so the
pruner stops bad trials. Optionally, a last study picks the combiner
(:mod:`~engine.tuning.combiner`). :mod:`~engine.tuning.result` writes the
tuned config and prints the trials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sklearn.base import clone

from engine.config import Config, load_config
from engine.data import data_hash, encode_labels
from engine.ensemble import Ensemble, build_member
from engine.errors import ConfigError
from engine.search_space import stored_params
from engine.tuning.budget import DEFAULT_TRIALS, Budget, parse_duration
from engine.tuning.combiner import COMBINER, best_combiner, combiner_spec, search_combiner
from engine.tuning.members import MemberSearch, member_space, search_members
from engine.tuning.objective import scorer_for
from engine.tuning.result import TuneResult, write_tuned_config
from engine.tuning.search import make_pruner, make_sampler, quiet_optuna
from engine.tuning.storage import (
    default_storage,
    fingerprint,
    open_storage,
    open_study,
    safe_url,
    setting_up,
)


def _read_target(target: Config | str | Path | Ensemble, X: Any, y: Any, holdout: bool
                 ) -> tuple[Ensemble, Any, Any, Config | None, Path | None]:
    if isinstance(target, Ensemble):
        if X is None or y is None:
            raise ConfigError("tune(ensemble, X, y): give the training texts X and labels y")
        return target, X, y, None, None
    from engine.workflows import training_rows

    path = None
    if isinstance(target, (str, Path)):
        path = Path(target)
        target = load_config(path)
    if not isinstance(target, Config):
        raise ConfigError(f"tune() takes a config (path or Config) or an Ensemble, got "
                          f"{type(target).__name__}")
    frame = training_rows(target, holdout)
    return target.build_ensemble(), frame, frame[target.data.label], target, path


def _check_settings(config: Config | None, settings: dict[str, Any]) -> dict[str, Any]:
    """Arguments over the config's [tune] table over the defaults."""
    from engine.config import TUNE_KEYS

    table = dict(config.tune) if config is not None else {}
    unknown = sorted(set(table) - set(TUNE_KEYS))
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}' in [tune]; allowed: "
                          f"{', '.join(sorted(TUNE_KEYS))}")
    merged = {**TUNE_KEYS, **table, **{k: v for k, v in settings.items() if v is not None}}
    merged["seconds"] = parse_duration(merged.pop("time"))
    trials = merged["trials"]
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int)
                               or trials < 1):
        raise ConfigError(f"--trials must be a positive integer, got {trials!r}")
    if merged["seconds"] is None and trials is None:
        merged["trials"] = DEFAULT_TRIALS
    return merged


def tune(target: Config | str | Path | Ensemble, X: Any = None, y: Any = None, *,
         time: str | float | None = None, trials: int | None = None, metric: str | None = None,
         members: Sequence[str] | None = None, combiner: bool | None = None,
         spaces: Mapping[str, Mapping[str, Any]] | None = None, storage: str | None = None,
         study: str | None = None, sampler: str | None = None, pruner: str | None = None,
         seed: int | None = None, output: str | Path | None = None, holdout: bool = False,
         heartbeat: float = 10.0, verbose: bool = False) -> TuneResult:
    """Tune each member's parameters (and optionally the combiner) with Optuna.

    The objective is a member's out-of-fold score on the ensemble's own folds,
    in ``metric``. Each member's study starts with the member as configured,
    so the best found is never worse out of fold. Studies live in ``storage``;
    a run resumes them, and several processes (or machines, with a shared
    database) on one study share its trials.

    Parameters
    ----------
    target : str, Path, Config or Ensemble
        A TOML config (its ``[data] train`` rows are read), or an Ensemble with ``X, y``.
    X, y : training texts (or DataFrame) and labels, with an Ensemble
    time : str or float or None
        Wall-clock budget: ``"10m"``, ``"1h30m"``, seconds. Shared among the
        members in proportion to the cost of their trials.
    trials : int or None
        At most this many finished trials per member's study, counting every
        worker's and earlier runs'. 20 when neither ``time`` nor ``trials`` is given.
    metric : str, default="f1"
        A name in :data:`engine.metrics.SCORERS`: ``f1`` (positive class for
        two classes, macro for more), ``accuracy``, ``log_loss``, ``roc_auc``, ...
    members : list of str or None
        The members to tune; all those with a search space when None.
    combiner : bool, default=False
        Also choose the combiner (and its parameters) on the tuned members'
        out-of-fold probabilities.
    spaces : dict or None
        ``{member: {param: range}}`` replacing a member's declared space; a
        range is :class:`~engine.search_space.Float`, ``Int``, ``Categorical``,
        ``{"low": .., "high": .., "log": ..}`` or a list of choices.
    storage : str or None
        An Optuna storage URL; ``sqlite:///models/<name>-tune.db`` when None.
    study : str or None
        Study name prefix (``<study>:<member>``); the config's name when None.
    sampler : {"tpe", "random"}, default="tpe"
    pruner : {"median", "none"}, default="median"
    seed : int or None
        The sampler's seed (leave None when several workers share a study).
    output : str, Path or None
        Where to write the tuned config; ``<config>.tuned.toml`` beside it when None.
    holdout : bool, default=False
        Tune on the config's training split only, leaving its validation rows unseen.
    heartbeat : float, default=10.0
        Seconds between a running trial's heartbeats; a trial silent for three
        of them (its worker was killed) is failed and retried with its parameters.
    verbose : bool, default=False
        A progress bar over the budget on a terminal.

    Returns
    -------
    TuneResult
        ``studies, ensemble = tune(...)`` also works.

    Examples
    --------
    >>> from engine import Ensemble
    >>> from engine.testing import make_text_dataset
    >>> X, y = make_text_dataset(2, n_per_class=30)
    >>> ens = Ensemble({"nb": "tfidf-nb"}, cv=3, random_state=0)
    >>> result = tune(ens, X, y, trials=3, storage="sqlite:///:memory:")
    >>> len(result.studies["nb"].trials), sorted(result.params["nb"])
    (3, ['alpha', 'min_df', 'ngram_range', 'sublinear_tf'])
    >>> result.best_scores["nb"] >= result.default_scores["nb"]
    True
    """
    ensemble, X, y, config, config_path = _read_target(target, X, y, holdout)
    settings = _check_settings(config, {"trials": trials, "metric": metric, "time": time,
                                        "members": members, "combiner": combiner,
                                        "storage": storage, "study": study,
                                        "sampler": sampler, "pruner": pruner, "seed": seed})
    scorer = scorer_for(settings["metric"])
    ensemble._checked_members()
    names = list(ensemble.members)
    wanted = settings["members"]
    if wanted is not None:
        unknown = [m for m in wanted if m not in names]
        if unknown or not wanted:
            raise ConfigError(f"cannot tune members {unknown or wanted}; the ensemble has "
                              f"{', '.join(names)}")
    given = {**((config.tune.get("space") or {}) if config else {}), **dict(spaces or {})}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"[tune.space] names {unknown}, which are not members "
                          f"({', '.join(names)})")

    texts = ensemble.member_texts(X, names)
    codes, classes = encode_labels(y, len(next(iter(texts.values()))))
    folds = ensemble.folds(codes, classes)
    searches, skipped = [], []
    for name in wanted or names:
        plugin, space, start = member_space(ensemble, name, given.get(name))
        if not space:
            if wanted is not None:
                raise ConfigError(f"member '{name}' ({plugin}) declares no search space; give "
                                  f"ranges in [tune.space.{name}]")
            skipped.append(name)
            continue
        searches.append(MemberSearch(name, plugin, space, start, texts[name], folds[name]))
    if not searches:
        raise ConfigError("no member has a search space to tune; give ranges in "
                          "[tune.space.<member>]")

    prefix = settings["study"] or (config.name if config else "ensemble")
    url = settings["storage"] or default_storage(prefix, _models_dir())
    budget = Budget(settings["seconds"])
    direction = "maximize" if scorer.greater_is_better else "minimize"
    data = data_hash(next(iter(texts.values())), codes)
    with quiet_optuna(), setting_up(url):
        store = open_storage(url, heartbeat)
        for search in searches:
            fixed = {k: v for k, v in build_member(ensemble.members[search.name])
                     .get_params(deep=False).items() if k not in search.space}
            stamp = fingerprint({"plugin": search.plugin, "fixed": fixed, "start": search.start,
                                 "space": repr(sorted(search.space.items())),
                                 "folds": [len(f) for f in folds.values()],
                                 "random_state": ensemble.random_state,
                                 "metric": scorer.name, "data": data,
                                 "texts": data_hash(search.texts, codes)})
            search.study = open_study(store, f"{prefix}:{search.name}", stamp, direction,
                                      make_sampler(settings["sampler"], settings["seed"]),
                                      make_pruner(settings["pruner"]), url)
            search.study.enqueue_trial({k: search.space[k].encode(v)
                                        for k, v in search.start.items()},
                                       user_attrs={"default": True}, skip_if_exists=True)
    with quiet_optuna():
        search_members(searches, ensemble, codes, len(classes), scorer, budget,
                        settings, verbose)
        studies = {s.name: s.study for s in searches}
        params = {s.name: stored_params(s.study.best_params, s.space, f"member '{s.name}'")
                  for s in searches}
        tuned = clone(ensemble).set_params(**{f"{m}__{k}": v for m, p in params.items()
                                              for k, v in p.items()})
        if settings["combiner"]:
            studies[COMBINER] = search_combiner(tuned, texts, codes, len(classes), folds,
                                                 scorer, budget, settings, store, url, prefix,
                                                 data)
            tuned.set_params(combiner=combiner_spec(ensemble.combiner,
                                                    best_combiner(studies[COMBINER])))
    default_scores = {s.name: _default_score(s.study) for s in searches}
    best_scores = {s.name: s.study.best_value for s in searches}
    result = TuneResult(studies, tuned, params, default_scores, best_scores, scorer.name,
                        safe_url(url), skipped=skipped)
    if config_path is not None:
        result.config_path = write_tuned_config(config_path, output, result)
    return result


def _models_dir() -> Path:
    from engine.workflows import MODELS_DIR

    return MODELS_DIR


def _default_score(study: Any) -> float | None:
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get("default"):
            return trial.value
    return None
