"""``tune``: search each member's parameters with Optuna, on the ensemble's own folds.

One study per member (``<study>:<member>``) in one storage, each stamped with
what it was made from. A run first scores every member as configured (the
first, enqueued trial of its study), then shares what is left of the budget
among the members in proportion to what a trial of each costs, and searches
with TPE; folds report intermediate scores so the pruner stops bad trials.
Optionally, a last study picks the combiner on the tuned members' out-of-fold
probabilities.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import sys
import time as clock
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from engine import registry
from engine.config import Config, load_config
from engine.data import data_hash, encode_labels
from engine.ensemble import Ensemble, build_combiner, build_member
from engine.errors import ConfigError
from engine.progress import fit_progress
from engine.search_space import (
    Categorical,
    Distribution,
    Float,
    Int,
    check_against,
    declared_space,
    decode,
    parse_distribution,
    points,
)
from engine.tuning.budget import Budget, parse_duration
from engine.tuning.objective import OutOfTime, out_of_fold, scorer_for
from engine.tuning.storage import (
    WORKER,
    default_storage,
    fail_orphans,
    fingerprint,
    open_storage,
    open_study,
    safe_url,
    setting_up,
)

DEFAULT_TRIALS = 20
# Share of a --time budget kept for the combiner's study (its members' out-of-fold refits).
COMBINER_SHARE = 0.1
COMBINER = "combiner"


@dataclass
class MemberSearch:
    """One member's search: its space, where it starts, its texts and folds, its study."""

    name: str
    plugin: str
    space: dict[str, Distribution]
    start: dict[str, Any]
    texts: list[str]
    folds: list[tuple[np.ndarray, np.ndarray]]
    study: Any = None


@dataclass
class TuneResult:
    """What :func:`tune` found; unpacks as ``studies, ensemble = tune(...)``.

    Attributes
    ----------
    studies : dict of str to optuna.Study
        One per tuned member, and ``"combiner"`` when the combiner was tuned.
    ensemble : Ensemble
        Unfitted, with every member's best parameters (and the best combiner).
    params : dict of str to dict
        The best parameters of each tuned member.
    default_scores, best_scores : dict of str to float
        Each member's out-of-fold score as configured and with its best parameters.
    metric : str
    storage : str
        The storage URL the studies live in (without its password).
    config_path : Path or None
        The tuned config written beside the original (tuning from a config).
    skipped : list of str
        Members left as configured: their plugin declares no search space.
    """

    studies: dict[str, Any]
    ensemble: Ensemble
    params: dict[str, dict[str, Any]]
    default_scores: dict[str, float]
    best_scores: dict[str, float]
    metric: str
    storage: str
    config_path: Path | None = None
    skipped: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        yield self.studies
        yield self.ensemble

    def trials(self) -> Any:
        """Every finished or failed trial: member, number, state, params, score, seconds, worker."""
        import pandas as pd

        rows = []
        for member, study in self.studies.items():
            for trial in study.get_trials(deepcopy=False):
                seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
                    if trial.datetime_complete and trial.datetime_start else None
                rows.append({"member": member, "trial": trial.number,
                             "state": trial.state.name.lower(),
                             "params": ", ".join(f"{k}={decode(v)}"
                                                 for k, v in trial.params.items()),
                             "score": trial.value if trial.value is not None else
                             _last(trial.intermediate_values), "seconds": seconds,
                             "default": bool(trial.user_attrs.get("default")),
                             "worker": trial.user_attrs.get(WORKER, "")})
        return pd.DataFrame(rows)


def _last(values: Mapping[int, float]) -> float | None:
    return values[max(values)] if values else None


def _sampler(name: str, seed: int | None) -> Any:
    import optuna

    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if name not in samplers:
        raise ConfigError(f"unknown sampler '{name}'; choose one of {', '.join(samplers)}")
    return samplers[name](seed=seed)


def _pruner(name: str) -> Any:
    import optuna

    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5,
                                                              n_warmup_steps=1),
               "none": optuna.pruners.NopPruner}
    if name not in pruners:
        raise ConfigError(f"unknown pruner '{name}'; choose one of {', '.join(pruners)}")
    return pruners[name]()


def member_space(ensemble: Ensemble, name: str, given: Mapping[str, Any] | None
                 ) -> tuple[str, dict[str, Distribution], dict[str, Any]]:
    """A member's plugin name, the space to search (``given`` replaces the declared one)
    and its configured values of those parameters (the first trial)."""
    instance = build_member(ensemble.members[name])
    cls = type(instance)
    plugin = getattr(cls, "name", "") or cls.__name__
    owner = f"member '{name}' ({plugin})"
    params = instance.get_params(deep=False)
    declared = declared_space(cls, params)
    if given is None:
        space = declared
    else:
        if not isinstance(given, Mapping):
            raise ConfigError(f"[tune.space.{name}] must be a table of parameter = range")
        parsed = {key: value if isinstance(value, (Float, Int, Categorical))
                  else parse_distribution(value, f"[tune.space.{name}] {key}")
                  for key, value in given.items()}
        space = check_against(parsed, declared, params, owner)
    for key, dist in space.items():
        for value in points(dist):
            candidate = clone(instance).set_params(**{key: value})
            if hasattr(candidate, "_check_params"):
                try:
                    candidate._check_params()
                except ConfigError as exc:
                    raise ConfigError(f"{owner}: the range of {key} holds {value!r}, which it "
                                      f"rejects: {exc}") from None
    start = {}
    for key, dist in space.items():
        value = params[key]
        if not dist.contains(value):
            try:  # the configured value is the first trial: the search starts from it
                space[key] = dist.widened(value)
            except (ConfigError, TypeError):
                continue  # e.g. 0 on a log scale: sampled like the rest
        start[key] = value
    return plugin, space, start


def _member_objective(search: MemberSearch, ensemble: Ensemble, codes: np.ndarray,
                      n_classes: int, scorer: Any, out_of_time: Callable[[], bool] | None
                      ) -> Any:
    import optuna

    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: Any) -> float:
        trial.set_user_attr(WORKER, worker)
        params = {key: dist.suggest(trial, key) for key, dist in search.space.items()}
        candidate = clone(ensemble).set_params(
            **{f"{search.name}__{key}": value for key, value in params.items()})
        member = candidate._checked_members()[search.name]

        def report(score: float, step: int) -> None:
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"fold {step + 1}: {score:.4f}")

        try:
            score, _ = out_of_fold(member, search.texts, codes, search.folds, n_classes, scorer,
                                   report, out_of_time)
        except OutOfTime as exc:
            trial.set_user_attr("out_of_time", True)
            raise optuna.TrialPruned(str(exc)) from None
        return score

    return objective


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _cost(study: Any) -> float:
    """Median seconds of a finished trial (every worker's), the member's cost."""
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds()
               for t in _finished(study) if t.datetime_complete and t.datetime_start]
    return max(statistics.median(seconds), 1e-3) if seconds else 0.0


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; the progress bar and the table say it once."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            yield
        finally:
            optuna.logging.set_verbosity(level)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f}m" if seconds >= 120 else f"{seconds:.0f}s"


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
    with _quiet_optuna(), setting_up(url):
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
                                      _sampler(settings["sampler"], settings["seed"]),
                                      _pruner(settings["pruner"]), url)
            search.study.enqueue_trial({k: search.space[k].encode(v)
                                        for k, v in search.start.items()},
                                       user_attrs={"default": True}, skip_if_exists=True)
    with _quiet_optuna():
        _search_members(searches, ensemble, codes, len(classes), scorer, budget,
                        settings, verbose)
        studies = {s.name: s.study for s in searches}
        params = {s.name: {k: s.space[k].decode(v) for k, v in s.study.best_params.items()}
                  for s in searches}
        tuned = clone(ensemble).set_params(**{f"{m}__{k}": v for m, p in params.items()
                                              for k, v in p.items()})
        if settings["combiner"]:
            studies[COMBINER] = _search_combiner(tuned, texts, codes, len(classes), folds,
                                                 scorer, budget, settings, store, url, prefix,
                                                 data)
            best = studies[COMBINER].best_params
            tuned.set_params(combiner=_combiner_spec(ensemble.combiner, best))
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


def _search_members(searches: list[MemberSearch], ensemble: Ensemble, codes: np.ndarray,
                    n_classes: int, scorer: Any, budget: Budget, settings: dict[str, Any],
                    verbose: bool) -> None:
    """The configured trial of each member first, then turns until the budget or the cap."""
    from optuna.trial import TrialState

    cap = settings["trials"]
    seconds = budget.seconds
    reserve = seconds * COMBINER_SHARE if seconds and settings["combiner"] else 0.0
    if seconds is not None:
        known = [_cost(s.study) for s in searches]
        if all(known) and sum(known) > seconds - reserve:
            raise ConfigError(f"--time {_duration(seconds)} cannot fit one trial of each member "
                              f"(a round takes about {sum(known):.0f}s here); give --time "
                              f"{_duration(1.5 * sum(known) / (1 - COMBINER_SHARE) + 60)} or more")
    total = seconds if seconds is not None else cap * len(searches)
    with fit_progress(total, verbose, "tuning") as bar:
        def show(search: MemberSearch) -> Any:
            def callback(study: Any, trial: Any) -> None:
                fail_orphans(study)
                done = budget.spent() if seconds is not None else \
                    sum(len(_finished(s.study)) for s in searches)
                best = study.best_value if _finished(study) and \
                    any(t.state == TrialState.COMPLETE for t in _finished(study)) else float("nan")
                bar.set(min(done, total), f"{search.name} #{trial.number} best {best:.4f}")
            return callback

        def one_trial(search: MemberSearch, first: bool) -> None:
            # the first trial always runs to its end: it is the baseline and the cost
            hard_stop = None if first or seconds is None else \
                (lambda: budget.left() <= reserve)
            objective = _member_objective(search, ensemble, codes, n_classes, scorer, hard_stop)
            search.study.optimize(objective, n_trials=1, callbacks=[show(search)],
                                  gc_after_trial=False)

        def capped(search: MemberSearch) -> bool:
            fail_orphans(search.study)  # so a retried trial is run, not forgotten
            return cap is not None and len(_finished(search.study)) >= cap

        for search in searches:  # as configured first: the baseline and the cost
            if not _finished(search.study):
                one_trial(search, first=True)
        if seconds is not None and budget.spent() > seconds - reserve:
            spent = budget.spent()
            raise ConfigError(f"--time {_duration(seconds)} cannot fit one trial of each member "
                              f"(the first round took {spent:.0f}s); give --time "
                              f"{_duration(1.5 * spent / (1 - COMBINER_SHARE) + 60)} or more")
        # Members take turns, the one with the fewest finished trials (all workers') next:
        # each gets time in proportion to what its trials cost, and about as many trials.
        active = [s for s in searches if not capped(s)]
        while active:
            search = min(active, key=lambda s: len(_finished(s.study)))
            if seconds is not None and budget.left() - reserve < 0.5 * _cost(search.study):
                active.remove(search)  # not enough left for another of its trials
                continue
            one_trial(search, first=False)
            if capped(search):
                active.remove(search)


def _combiner_spec(configured: Any, best: Mapping[str, Any]) -> Any:
    """``(name, params)`` of the best combiner, keeping configured parameters of that name."""
    name = best[COMBINER]
    params = {key.partition("__")[2]: value for key, value in best.items()
              if key.startswith(f"{name}__")}
    if isinstance(configured, tuple) and configured[0] == name:
        params = {**dict(configured[1]), **params}
    return (name, params) if params else name


def _search_combiner(tuned: Ensemble, texts: dict[str, list[str]], codes: np.ndarray,
                     n_classes: int, folds: dict[str, Any], scorer: Any, budget: Budget,
                     settings: dict[str, Any], store: Any, url: str, prefix: str,
                     data: str) -> Any:
    """Choose the combiner on the tuned members' out-of-fold probabilities."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    members = tuned._checked_members()
    P = np.stack([out_of_fold(members[m], texts[m], codes, folds[m], n_classes, scorer)[1]
                  for m in members])
    names = list(members)
    choices = sorted(registry.get_registry().combiners())
    spaces = {c: declared_space(registry.get_combiner(c)) for c in choices}
    stamp = fingerprint({"members": names, "choices": choices, "spaces": repr(spaces),
                         "metric": scorer.name, "data": data, "cv": tuned.cv,
                         "random_state": tuned.random_state})
    configured = tuned.combiner if isinstance(tuned.combiner, (str, tuple)) else None
    with setting_up(url):
        study = open_study(store, f"{prefix}:{COMBINER}", stamp,
                           "maximize" if scorer.greater_is_better else "minimize",
                           _sampler(settings["sampler"], settings["seed"]),
                           optuna.pruners.NopPruner(), url)
        name = configured if isinstance(configured, str) else (configured or [None])[0]
        if name in choices:
            study.enqueue_trial({COMBINER: name}, user_attrs={"default": True},
                                skip_if_exists=True)
    cv = StratifiedKFold(tuned.cv, shuffle=True, random_state=tuned.random_state)

    def objective(trial: Any) -> float:
        name = trial.suggest_categorical(COMBINER, choices)
        params = {key: dist.suggest(trial, f"{name}__{key}")
                  for key, dist in spaces[name].items()}
        spec = _combiner_spec(configured, {COMBINER: name, **{f"{name}__{k}": v
                                                               for k, v in params.items()}})
        combiner = build_combiner(spec, tuned.random_state).fit(P, codes, names)
        return float(scorer(codes, combiner.oof_predict_proba(P, codes, cv)))

    cap = settings["trials"] or DEFAULT_TRIALS
    if len(study.get_trials(states=(TrialState.COMPLETE,))) < cap:
        timeout = None if budget.seconds is None else max(budget.left(), 1.0)
        study.optimize(objective, timeout=timeout, gc_after_trial=False,
                       callbacks=[MaxTrialsCallback(cap, states=(TrialState.COMPLETE,))])
    return study


def write_tuned_config(config_path: Path, output: str | Path | None, result: TuneResult
                       ) -> Path:
    """Write the config with the best parameters beside the original, atomically."""
    from engine.config import read_toml
    from engine.io.atomic import atomic_write
    from engine.tuning.toml_out import dumps

    target = Path(output) if output else config_path.with_name(
        f"{config_path.stem}.tuned.toml")
    if target.resolve() == config_path.resolve():
        raise ConfigError(f"the tuned config would overwrite {config_path}; give another -o")
    raw = read_toml(config_path)
    raw["name"] = f"{raw.get('name', config_path.stem)}-tuned"
    if target.parent.resolve() != config_path.parent.resolve():
        # elsewhere, a path relative to the original's folder would point nowhere
        data = load_config(config_path).data
        for key in ("train", "test", "sample_submission"):
            if getattr(data, key) is not None and key in raw.get("data", {}):
                raw["data"][key] = str(Path(getattr(data, key)).resolve())
    for member, params in result.params.items():
        table = raw["members"][member]
        defaults = build_member(table["plugin"]).get_params(deep=False)
        for key, value in params.items():
            if value is None:
                if defaults.get(key) is not None:
                    raise ConfigError(f"cannot write {member}.{key} = None to TOML; its "
                                      f"default is {defaults[key]!r}")
                table.pop(key, None)
            else:
                table[key] = list(value) if isinstance(value, tuple) else value
    if COMBINER in result.studies:
        spec = result.ensemble.combiner
        raw.setdefault("ensemble", {})["combiner"] = spec if isinstance(spec, str) else \
            {"name": spec[0], **{k: list(v) if isinstance(v, tuple) else v
                                 for k, v in spec[1].items()}}
    lines = [f"Tuned by `ensemble tune` from {config_path.name} on "
             f"{clock.strftime('%Y-%m-%d %H:%M')}: out-of-fold {result.metric}, "
             f"studies in {result.storage}"]
    lines += [f"  {m}: {_fmt(result.default_scores.get(m))} as configured -> "
              f"{_fmt(result.best_scores[m])} tuned" for m in result.params]
    with atomic_write(target, encoding="utf-8") as handle:
        handle.write(dumps(raw, "\n".join(lines)))
    return target


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def print_trials(result: TuneResult, console: Any = None) -> None:
    """The trials as a table (member, trial, state, params, score, seconds), then the best."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 160)
    frame = result.trials()
    table = Table(title=f"trials ({result.metric}, out of fold)")
    for column in ("member", "trial", "state", "params", "score", "seconds", "worker"):
        table.add_column(column, justify="right" if column in ("trial", "score", "seconds")
                         else "left")
    for row in frame.itertuples():
        table.add_row(row.member, str(row.trial), row.state + (" (as configured)"
                                                                if row.default else ""),
                      row.params, _fmt(row.score if row.score == row.score else None),
                      "" if row.seconds != row.seconds or row.seconds is None
                      else f"{row.seconds:.1f}", row.worker)
    console.print(table)
