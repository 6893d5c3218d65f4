"""Hyperparameter tuning on Optuna: ``tune`` searches members' (and the combiner's)
parameters on the ensemble's folds, in a resumable, shareable study.

``run`` is ``tune``; ``members`` searches the members (spaces, objective,
turns) and ``combiner`` the combiner; ``objective`` scores a member out of
fold, fold by fold; ``budget`` parses ``--time``; ``storage`` opens the study
database, refuses to mix configs and retries killed trials; ``search`` holds
Optuna's samplers and pruners; ``result`` and ``toml_out`` print the trials
and write the tuned config. Optuna is imported only when a study runs, so
``ensemble --help`` stays light.
"""

from engine.tuning.result import TuneResult
from engine.tuning.run import tune

__all__ = ["TuneResult", "tune"]
