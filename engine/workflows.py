"""The jobs behind the CLI, callable from Python: fit from a config, the demo."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from engine.config import Config, DataConfig
from engine.data import holdout_split, read_table, require_columns
from engine.ensemble import Ensemble
from engine.evaluation import evaluate
from engine.kaggle import write_submission

MODELS_DIR = Path("models")


def read_labelled(path: Path | None, data: DataConfig,
                  extra: list[str] | None = None) -> pd.DataFrame:
    """Read a training table and check that its text, label and ``extra`` columns exist."""
    if path is None:
        from engine.errors import ConfigError

        raise ConfigError("the config has no [data] train = \"path/to/train.csv\"")
    frame = read_table(path)
    text = [data.text] if isinstance(data.text, str) else list(data.text)
    require_columns(frame, [*text, *(extra or []), data.label], path.name)
    return frame


def data_settings(data: DataConfig, columns: Any = None) -> dict[str, Any]:
    """The column names a saved model needs to read new files.

    The id column is recorded only when the training ``columns`` have it (the
    default ``id`` names no column in data that has none).
    """
    has_id = data.id and (columns is None or data.id in columns)
    return {"text": data.text, "label": data.label, "id": data.id if has_id else None,
            "fill_na": data.fill_na}


def _member_columns(config: Config) -> list[str]:
    return [c for cols in config.member_text.values()
            for c in ([cols] if isinstance(cols, str) else cols)]


def training_rows(config: Config, holdout: bool = False) -> pd.DataFrame:
    """The config's training rows; with ``holdout``, without its validation split."""
    frame = read_labelled(config.data.train, config.data, _member_columns(config))
    if holdout:
        frame = holdout_split(frame, config.data.validation_split, config.data.split_seed)[0]
    return frame


def fit_config(config: Config, output: str | Path | None = None,
               **overrides: Any) -> tuple[Ensemble, Path]:
    """Fit the config's ensemble on all its training rows and save it.

    ``overrides`` replace the config's [ensemble] settings (``verbose``, ``threshold``, ...).

    Returns
    -------
    (Ensemble, Path)
        The fitted ensemble and the model directory (``models/<name>`` by default).
    """
    ensemble = config.build_ensemble(**overrides)
    frame = read_labelled(config.data.train, config.data, _member_columns(config))
    ensemble.fit(frame, frame[config.data.label])
    path = Path(output) if output else MODELS_DIR / config.name
    settings = data_settings(config.data, frame.columns)
    if config.source is not None and len(config.source) < 60_000:  # to refit or edit later
        settings["config"] = config.source
    ensemble.save(path, settings)
    return ensemble, path


def track_fit(config: Config, ensemble: Ensemble, path: Path, config_path: str | Path,
              **mlflow: Any) -> str:
    """Log a fitted config to MLflow (:func:`engine.mlflow.log_fit`); returns the run id.

    The training rows are read again for the out-of-fold report and the
    model's input example; ``mlflow`` takes ``uri``, ``experiment``, ``register``.
    """
    from engine.mlflow import log_fit

    frame = read_labelled(config.data.train, config.data, _member_columns(config))
    return log_fit(ensemble, path, frame=frame, labels=frame[config.data.label],
                   config_path=config_path, **{"experiment": config.name, **mlflow})


def holdout_table(config: Config, **overrides: Any
                  ) -> tuple[pd.DataFrame, Ensemble, pd.DataFrame]:
    """Fit on the config's training split and score every member and combiner on the rest.

    Returns
    -------
    (DataFrame, Ensemble, DataFrame)
        The leaderboard (with the config's reference rows), the ensemble fitted
        on the training split, and the validation rows.
    """
    frame = read_labelled(config.data.train, config.data, _member_columns(config))
    train, valid = holdout_split(frame, config.data.validation_split, config.data.split_seed)
    ensemble = config.build_ensemble(**overrides).fit(train, train[config.data.label])
    table = evaluate(ensemble, valid, valid[config.data.label])
    reference = pd.DataFrame(config.reference).set_index("name") if config.reference else None
    if reference is not None:
        reference.insert(0, "kind", "reference")
        table = pd.concat([reference, table]).__finalize__(table)  # keeps attrs["positive"]
    table.attrs.update(n_train=len(train), n_valid=len(valid))
    return table, ensemble, valid


def run_demo(config: Config, output: str | Path | None = None,
             submission: str | Path = "submission.csv", report: str | Path | None = None,
             predictions: str | Path = "predictions.csv", **overrides: Any) -> dict[str, Any]:
    """The demo: holdout table and report, refit on all rows, save, then a Kaggle submission
    (with ``[data] test`` and ``sample_submission``) or predictions (``test`` alone).

    The report evaluates the ensemble fitted on the training split on the
    validation rows, so its numbers are honest; the saved model is refitted on all rows.
    """
    from engine.report import write_report

    start = time.perf_counter()
    table, holdout, valid = holdout_table(config, **overrides)
    result: dict[str, Any] = {"table": table, "submission": None, "report": None,
                              "predictions": None}
    if report is not None:
        result["report"] = write_report(
            holdout, valid, valid[config.data.label], report, title=f"{config.name}: validation",
            source=f"{len(valid)} validation rows of {config.data.train.name} "
                   f"(trained on {table.attrs['n_train']})")
    ensemble, path = fit_config(config, output, **overrides)
    result["model"] = path
    if config.data.test is not None and config.data.sample_submission is not None:
        test = read_table(config.data.test)
        sample = read_table(config.data.sample_submission)
        write_submission(ensemble, test, sample, submission, config.data.id)
        result["submission"] = Path(submission)
    elif config.data.test is not None:
        from engine.streaming import write_predictions

        write_predictions(path, config.data.test, predictions,
                          {"text": config.data.text, "fill_na": config.data.fill_na},
                          config.data.id)
        result["predictions"] = Path(predictions)
    result["seconds"] = time.perf_counter() - start
    return result
