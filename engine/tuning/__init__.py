"""Hyperparameter tuning on Optuna: ``tune`` searches members' (and the combiner's)
parameters on the ensemble's folds, in a resumable, shareable study.

``budget`` parses and shares a wall-clock budget; ``storage`` opens the study
database and refuses to mix configs; ``objective`` scores one trial out of
fold; ``run`` drives the search; ``toml_out`` writes the tuned config. Optuna is
imported only when a study runs, so ``ensemble --help`` stays light.
"""

from engine.tuning.run import TuneResult, tune

__all__ = ["TuneResult", "tune"]
