"""Logged as the pyfunc's code: MLflow runs it to build the model, so nothing is unpickled."""

import mlflow.models

from engine.mlflow.pyfunc import EnsemblePyfunc

mlflow.models.set_model(EnsemblePyfunc())
