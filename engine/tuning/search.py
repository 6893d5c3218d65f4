"""Optuna's parts as ``tune`` uses them: samplers, pruners, quiet logs, and what a
study's finished trials say (how many, what one costs)."""

from __future__ import annotations

import contextlib
import statistics
import warnings
from collections.abc import Iterator
from typing import Any

from engine.errors import ConfigError


def make_sampler(name: str, seed: int | None) -> Any:
    """Optuna's sampler named ``name`` (``tpe`` or ``random``), or a one-line error."""
    import optuna

    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if name not in samplers:
        raise ConfigError(f"unknown sampler '{name}'; choose one of {', '.join(samplers)}")
    return samplers[name](seed=seed)


def make_pruner(name: str) -> Any:
    """``median`` (after 5 trials, from the second fold on) or ``none``."""
    import optuna

    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5,
                                                              n_warmup_steps=1),
               "none": optuna.pruners.NopPruner}
    if name not in pruners:
        raise ConfigError(f"unknown pruner '{name}'; choose one of {', '.join(pruners)}")
    return pruners[name]()


def finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def cost(study: Any) -> float:
    """Median seconds of a finished trial (every worker's), the member's cost."""
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds()
               for t in finished(study) if t.datetime_complete and t.datetime_start]
    return max(statistics.median(seconds), 1e-3) if seconds else 0.0


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
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
