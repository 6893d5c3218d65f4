"""The MLflow pyfunc model: a model directory loaded with :func:`engine.load`, never a pickle.

MLflow runs ``model_code.py`` (logged as code, "models from code") to build this
class; :meth:`EnsemblePyfunc.load_context` then loads the model directory that
was logged beside it as an artifact, with every file's sha256 verified.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

ARTIFACT = "model"  # the artifact key (and folder) of the model directory


# MLflow warns at class creation when predict has no type hints; the logged signature is
# the schema here (type hints of Any would make it warn differently).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*type hints.*")

    class EnsemblePyfunc(PythonModel):
        """``predict(DataFrame)`` returns ``engine.load(...).predict_proba(DataFrame)``.

        The answer is that same array: shape (n_rows, n_classes), float64, column
        k the probability of ``classes[k]`` (the MLmodel's metadata lists them).
        """

        def load_context(self, context: Any) -> None:
            from engine import load

            trusted = (context.model_config or {}).get("trusted", [])
            self.model = load(context.artifacts[ARTIFACT], trusted=trusted)

        # No type hints: MLflow would read them as the input schema; the signature is it.
        def predict(self, context, model_input, params=None):
            """``predict_proba`` of the loaded model: (n_rows, n_classes) float64."""
            if isinstance(model_input, pd.Series):
                model_input = model_input.tolist()  # a column of texts
            return self.model.predict_proba(model_input)
