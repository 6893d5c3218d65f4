"""What a trial scores: a member's out-of-fold predictions on the ensemble's own folds.

Each fold reports the score of the rows predicted so far, so a pruner can stop
a trial that is already worse than most after one or two folds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.ensemble import fit_fold
from engine.metrics import SCORERS, Scorer

Folds = Sequence[tuple[np.ndarray, np.ndarray]]


class OutOfTime(Exception):
    """The wall-clock budget ran out between two folds of a trial."""


def scorer_for(metric: str) -> Scorer:
    """The scorer named ``metric`` from :data:`engine.metrics.SCORERS`, or a one-line error."""
    from engine.errors import ConfigError, did_you_mean

    if metric not in SCORERS:
        raise ConfigError(f"unknown metric '{metric}'{did_you_mean(metric, SCORERS)}; choose "
                          f"one of {', '.join(SCORERS)}")
    return SCORERS[metric]


def out_of_fold(member: Any, texts: list[str], codes: np.ndarray, folds: Folds,
                n_classes: int, scorer: Scorer,
                report: Callable[[float, int], None] | None = None,
                out_of_time: Callable[[], bool] | None = None) -> tuple[float, np.ndarray]:
    """Fit a clone of ``member`` on each fold; return the out-of-fold score and probabilities.

    Parameters
    ----------
    member : plugin
        Unfitted; cloned for every fold.
    texts, codes : the member's texts and the class codes
    folds : list of (training rows, held-out rows)
    n_classes : int
    scorer : Scorer
    report : callable or None
        ``report(score so far, fold)`` after each fold; it raises to stop the trial
        (Optuna's ``TrialPruned``).
    out_of_time : callable or None
        Checked before each fold after the first; True raises :class:`OutOfTime`.

    Returns
    -------
    (float, ndarray of shape (n_rows, n_classes))
    """
    oof = np.zeros((len(codes), n_classes))
    seen = np.zeros(len(codes), dtype=bool)
    for step, (train, held_out) in enumerate(folds):
        if step and out_of_time is not None and out_of_time():
            raise OutOfTime(f"stopped after {step} of {len(folds)} folds")
        _, _, proba, _ = fit_fold((None, step), member, texts, codes, train, held_out)
        oof[held_out], seen[held_out] = proba, True
        score = float(scorer(codes[seen], oof[seen]))
        if report is not None:
            report(score, step)
    return score, oof
