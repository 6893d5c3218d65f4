"""Choosing the combiner on the tuned members' out-of-fold probabilities: every
registered combiner, with its own search space, scored as ``Ensemble.fit`` scores it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from engine import registry
from engine.ensemble import Ensemble, build_combiner
from engine.errors import ConfigError
from engine.search_space import STUDY_CHANGED, declared_space, stored_params
from engine.tuning.budget import DEFAULT_TRIALS, Budget
from engine.tuning.objective import out_of_fold
from engine.tuning.search import make_sampler
from engine.tuning.storage import fingerprint, open_study, setting_up

COMBINER = "combiner"  # the combiner's study, and its choice parameter


def combiner_spec(configured: Any, best: Mapping[str, Any]) -> Any:
    """``(name, params)`` of the best combiner, keeping configured parameters of that name."""
    name = best[COMBINER]
    params = {key.partition("__")[2]: value for key, value in best.items()
              if key.startswith(f"{name}__")}
    if isinstance(configured, tuple) and configured[0] == name:
        params = {**dict(configured[1]), **params}
    return (name, params) if params else name


def combiner_spaces() -> dict[str, Any]:
    """Every registered combiner's declared search space, by name."""
    return {c: declared_space(registry.get_combiner(c))
            for c in sorted(registry.get_registry().combiners())}


def best_combiner(study: Any) -> dict[str, Any]:
    """The best trial's parameters, checked as a stranger's (a copied study may be edited)."""
    spaces = combiner_spaces()
    best = dict(study.best_params)
    name = best.pop(COMBINER, None)
    if not isinstance(name, str) or name not in spaces:
        raise ConfigError(f"the combiner study's best trial names no registered combiner "
                          f"({', '.join(spaces)}); {STUDY_CHANGED}")
    prefix = f"{name}__"
    if any(not key.startswith(prefix) for key in best):
        raise ConfigError(f"the combiner study's best trial sets parameters of another "
                          f"combiner than {name}; {STUDY_CHANGED}")
    inner = stored_params({key.removeprefix(prefix): v for key, v in best.items()},
                          spaces[name], f"combiner '{name}'")
    return {COMBINER: name, **{prefix + key: value for key, value in inner.items()}}


def search_combiner(tuned: Ensemble, texts: dict[str, list[str]], codes: np.ndarray,
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
    spaces = combiner_spaces()
    choices = sorted(spaces)
    stamp = fingerprint({"members": names, "choices": choices, "spaces": repr(spaces),
                         "metric": scorer.name, "data": data, "cv": tuned.cv,
                         "random_state": tuned.random_state})
    configured = tuned.combiner if isinstance(tuned.combiner, (str, tuple)) else None
    with setting_up(url):
        study = open_study(store, f"{prefix}:{COMBINER}", stamp,
                           "maximize" if scorer.greater_is_better else "minimize",
                           make_sampler(settings["sampler"], settings["seed"]),
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
        spec = combiner_spec(configured, {COMBINER: name, **{f"{name}__{k}": v
                                                               for k, v in params.items()}})
        combiner = build_combiner(spec, tuned.random_state).fit(P, codes, names)
        return float(scorer(codes, combiner.oof_predict_proba(P, codes, cv)))

    cap = settings["trials"] or DEFAULT_TRIALS
    if len(study.get_trials(states=(TrialState.COMPLETE,))) < cap:
        timeout = None if budget.seconds is None else max(budget.left(), 1.0)
        study.optimize(objective, timeout=timeout, gc_after_trial=False,
                       callbacks=[MaxTrialsCallback(cap, states=(TrialState.COMPLETE,))])
    return study
