"""MLflow: log an ensemble as a pyfunc model, and a fit as one tracked run.

The pyfunc model carries the model directory as an artifact and loads it with
:func:`engine.load` (sha256-verified, no pickle): its code is ``model_code.py``,
logged as code, so MLflow unpickles nothing either. ``predict(DataFrame)``
returns exactly ``engine.load(...).predict_proba(DataFrame)``: an array of shape
(n_rows, n_classes) whose column k is ``classes[k]`` (listed in the model's
metadata).

Examples
--------
>>> import engine.mlflow, mlflow                                         # doctest: +SKIP
>>> mlflow.set_tracking_uri(engine.mlflow.DEFAULT_TRACKING_URI)          # doctest: +SKIP
>>> with mlflow.start_run():                                             # doctest: +SKIP
...     info = engine.mlflow.log_model(ensemble, name="model")
>>> mlflow.pyfunc.load_model(info.model_uri).predict(frame)              # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from engine import __version__
from engine.importing import require_extra

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
CODE = Path(__file__).with_name("model_code.py")
MAX_PARAM_LENGTH = 6000  # MLflow refuses longer parameter values


def tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else the local SQLite store ``mlruns.db``."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def require_mlflow() -> None:
    require_extra("mlflow", "mlflow", "sqlalchemy", "alembic")


def _quiet() -> None:
    """No progress bars or per-table INFO lines from MLflow and its database migrations."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def input_frame(model: Any, X: Any = None, n: int = 3) -> pd.DataFrame:
    """The columns the model reads (texts as strings), from ``X``'s first rows or an example."""
    from engine.serving import input_columns

    columns = input_columns(model)
    if X is None:
        return pd.DataFrame({c: ["The parcel arrived two days late"] for c in columns})
    frame = X.head(n)[columns] if isinstance(X, pd.DataFrame) else \
        pd.DataFrame({columns[0]: list(X)[:n]})
    return frame.fillna("" if model.fill_na is None else model.fill_na).astype(str)


def _requirements(model: Any) -> list[str]:
    """What the model needs installed: the engine and the installed distribution of every
    plugin and combiner it uses, as this environment has them.

    Never from the model directory: ``mlflow models serve`` installs these, and a
    manifest may name any package (``ensemble-engine-fast-tfidf==6.6.6`` for a built-in).
    A plugin that no installed distribution provides (registered in a notebook) is left out.
    """
    from importlib import metadata

    from engine import registry

    reg = registry.get_registry()
    tables = (reg.plugins(), reg.combiners())
    used = [(tables[0], part.name) for part in model.members_.values()] + \
        [(tables[1], model.combiner_.name)]
    packages = {"ensemble-engine": __version__}
    for table, name in used:
        package = table[name].package
        try:
            packages.setdefault(package, metadata.version(package))
        except metadata.PackageNotFoundError:
            continue
    return [f"{name}=={version}" for name, version in sorted(packages.items())]


def log_model(ensemble: Any, name: str = "model", *, input_example: Any = None,
              registered_model_name: str | None = None, trusted: Iterable[str] = ()) -> Any:
    """Log a fitted ensemble to the active MLflow run as a pyfunc model.

    Parameters
    ----------
    ensemble : Ensemble, str or Path
        A fitted ensemble, or a model directory (verified by loading it first).
    name : str, default="model"
        The model's name in the run.
    input_example : DataFrame or None
        A few rows with the columns the model reads; one made-up row when None.
        The signature is inferred from it and its predicted probabilities.
    registered_model_name : str or None
        Also register the model under this name in the model registry.
    trusted : list of str, default=()
        Extra skops types the model needs (``engine.load``'s ``trusted``), kept
        in the model's config for loading.

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``model_uri`` loads it: ``mlflow.pyfunc.load_model(info.model_uri)``.

    Examples
    --------
    >>> info = log_model(ensemble, name="tweets")                           # doctest: +SKIP
    >>> mlflow.pyfunc.load_model(info.model_uri).predict(frame)             # doctest: +SKIP
    array([[0.91, 0.09], ...])
    """
    require_mlflow()
    import mlflow
    from mlflow.models import infer_signature

    from engine import load

    trusted = list(trusted)
    _quiet()
    with tempfile.TemporaryDirectory(prefix="ensemble-mlflow-") as tmp:
        if isinstance(ensemble, (str, Path)):
            directory = Path(ensemble)
            model = load(directory, trusted=trusted)
        else:  # saved the way `ensemble fit` saves, so the copy loads with engine.load
            directory = Path(tmp) / "model"
            data = getattr(ensemble, "manifest_", {}).get("data") or {
                "text": ensemble.text, "fill_na": ensemble.fill_na}
            ensemble.save(directory, data)
            model = load(directory, trusted=trusted)
        example = input_frame(model, input_example)
        signature = infer_signature(example, model.predict_proba(example))
        classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*type hints.*")
            return mlflow.pyfunc.log_model(
                name=name, python_model=str(CODE), artifacts={"model": str(directory)},
                signature=signature, input_example=example,
                pip_requirements=_requirements(model),
                model_config={"trusted": trusted} if trusted else None,
                registered_model_name=registered_model_name,
                metadata={"classes": classes, "engine_version": __version__,
                          "output": "predict_proba: one column per class, in 'classes' order"})


def _params(manifest: dict[str, Any]) -> dict[str, str]:
    """Flat MLflow parameters: the ensemble's settings, the combiner's and each member's."""
    params: dict[str, Any] = {f"ensemble.{k}": v for k, v in manifest["ensemble"].items()}
    params["combiner"] = manifest["combiner"]["name"]
    params.update({f"combiner.{k}": v for k, v in manifest["combiner"]["config"].items()})
    for member in manifest["members"]:
        params[f"members.{member['name']}.plugin"] = member["plugin"]
        params.update({f"members.{member['name']}.{k}": v
                       for k, v in member["config"].items()})
    return {key: (value if isinstance(value, str) else json.dumps(value))[:MAX_PARAM_LENGTH]
            for key, value in params.items()}


def _metrics(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """``oof.<member or ensemble>.<metric>``; undefined scores (NaN) are left out."""
    return {f"oof.{model}.{metric}": float(value) for model, values in scores.items()
            for metric, value in values.items()
            if isinstance(value, (int, float)) and math.isfinite(value)}


def log_fit(ensemble: Any, model_dir: str | Path, *, frame: pd.DataFrame | None = None,
            labels: Any = None, config_path: str | Path | None = None,
            experiment: str | None = None, uri: str | None = None,
            register: str | None = None) -> str:
    """Log a fit as one MLflow run; what ``ensemble fit CONFIG --mlflow`` calls.

    The run holds the config file, the ensemble's, combiner's and members'
    parameters, the out-of-fold scores as metrics, the leaderboard as a table
    artifact, ``report.html`` (out-of-fold predictions of the training rows),
    and the model directory as a pyfunc model.

    Parameters
    ----------
    ensemble : Ensemble
        Fitted (it keeps its out-of-fold probabilities).
    model_dir : str or Path
        Where the ensemble was saved; logged as the model.
    frame, labels : training rows and labels, or None
        For the report and the input example; no report when None.
    config_path : str, Path or None
        The TOML config, logged as an artifact.
    experiment : str or None
        MLflow experiment (created when missing); the model directory's name when None.
    uri : str or None
        Tracking URI; see :func:`tracking_uri`.
    register : str or None
        Register the model under this name.

    Returns
    -------
    str
        The run id.
    """
    require_mlflow()
    import mlflow

    from engine.io.model_dir import read_manifest

    _quiet()
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    mlflow.set_tracking_uri(tracking_uri(uri))
    mlflow.set_experiment(experiment or model_dir.name)
    with mlflow.start_run(run_name=model_dir.name) as run:
        mlflow.log_params(_params(manifest))
        mlflow.log_metrics(_metrics(manifest["scores"]))
        mlflow.set_tags({"ensemble_engine.version": __version__,
                         "ensemble_engine.training_rows": manifest["training"]["n_rows"],
                         "ensemble_engine.training_sha256": manifest["training"]["sha256"]})
        if config_path is not None:
            mlflow.log_artifact(str(config_path), "config")
        table = ensemble.leaderboard()
        mlflow.log_table(table.reset_index(), "leaderboard.json")
        with tempfile.TemporaryDirectory(prefix="ensemble-mlflow-") as tmp:
            (Path(tmp) / "leaderboard.csv").write_text(table.to_csv())
            mlflow.log_artifact(str(Path(tmp) / "leaderboard.csv"))
            if frame is not None and labels is not None:
                from engine.report import write_report

                report = write_report(ensemble, frame, labels, Path(tmp) / "report.html",
                                      title=f"{model_dir.name}: out-of-fold",
                                      source=f"{len(frame)} training rows, out-of-fold",
                                      out_of_fold=True)
                mlflow.log_artifact(str(report))
        log_model(model_dir, "model", input_example=frame, registered_model_name=register)
        return run.info.run_id
