"""Searching the members: each one's space and starting point, the objective of its
trials, and the turns they take until the budget or the cap."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from engine.ensemble import Ensemble, build_member
from engine.errors import ConfigError
from engine.progress import fit_progress
from engine.search_space import (
    Categorical,
    Distribution,
    Float,
    Int,
    check_against,
    declared_space,
    parse_distribution,
    points,
)
from engine.tuning.budget import COMBINER_SHARE, Budget
from engine.tuning.objective import OutOfTime, out_of_fold
from engine.tuning.search import cost, finished
from engine.tuning.storage import WORKER, fail_orphans


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


def member_objective(search: MemberSearch, ensemble: Ensemble, codes: np.ndarray,
                      n_classes: int, scorer: Any, out_of_time: Callable[[], bool] | None
                      ) -> Any:
    import optuna

    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: Any) -> float:
        # Optuna's heartbeat thread writes its first beat a moment after the trial starts;
        # beat once first, so a trial that names its worker always has a heartbeat (a
        # worker killed in between would leave a trial that neither Optuna's staleness
        # check nor fail_orphans fails: RUNNING for ever, never retried).
        storage = trial.study._storage
        if hasattr(storage, "record_heartbeat") and storage.get_heartbeat_interval():
            storage.record_heartbeat(trial._trial_id)
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


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f}m" if seconds >= 120 else f"{seconds:.0f}s"


def search_members(searches: list[MemberSearch], ensemble: Ensemble, codes: np.ndarray,
                    n_classes: int, scorer: Any, budget: Budget, settings: dict[str, Any],
                    verbose: bool) -> None:
    """The configured trial of each member first, then turns until the budget or the cap."""
    from optuna.trial import TrialState

    cap = settings["trials"]
    seconds = budget.seconds
    reserve = seconds * COMBINER_SHARE if seconds and settings["combiner"] else 0.0
    if seconds is not None:
        known = [cost(s.study) for s in searches]
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
                    sum(len(finished(s.study)) for s in searches)
                best = study.best_value if finished(study) and \
                    any(t.state == TrialState.COMPLETE for t in finished(study)) else float("nan")
                bar.set(min(done, total), f"{search.name} #{trial.number} best {best:.4f}")
            return callback

        def one_trial(search: MemberSearch, first: bool) -> None:
            # the first trial always runs to its end: it is the baseline and the cost
            hard_stop = None if first or seconds is None else \
                (lambda: budget.left() <= reserve)
            objective = member_objective(search, ensemble, codes, n_classes, scorer, hard_stop)
            search.study.optimize(objective, n_trials=1, callbacks=[show(search)],
                                  gc_after_trial=False)

        def capped(search: MemberSearch) -> bool:
            fail_orphans(search.study)  # so a retried trial is run, not forgotten
            return cap is not None and len(finished(search.study)) >= cap

        for search in searches:  # as configured first: the baseline and the cost
            if not finished(search.study):
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
            search = min(active, key=lambda s: len(finished(s.study)))
            if seconds is not None and budget.left() - reserve < 0.5 * cost(search.study):
                active.remove(search)  # not enough left for another of its trials
                continue
            one_trial(search, first=False)
            if capped(search):
                active.remove(search)
