"""The jobs behind the CLI, callable from Python: fit from a config, the demo."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from engine.config import Config, DataConfig
from engine.data import holdout_split, read_table, require_columns
from engine.ensemble import Ensemble
from engine.errors import DataError
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


def data_settings(data: DataConfig) -> dict[str, Any]:
    """The column names a saved model needs to read new files."""
    return {"text": data.text, "label": data.label, "id": data.id, "fill_na": data.fill_na}


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
    ensemble.save(path, data_settings(config.data))
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


def read_test_texts(path: str | Path, text: str | list[str]) -> pd.DataFrame:
    """A test CSV for the leakage check, with its text column(s) checked."""
    frame = read_table(path)
    require_columns(frame, [text] if isinstance(text, str) else list(text), Path(path).name)
    return frame


def audit_labels(ensemble: Ensemble, frame: pd.DataFrame | None, data: DataConfig | dict,
                 test: pd.DataFrame | None = None, **options: Any) -> pd.DataFrame:
    """:meth:`Ensemble.label_issues` on the training ``frame`` (None: the stored labels
    alone), with ``data``'s label and id columns and optional test rows
    (:func:`read_test_texts`)."""
    settings = data_settings(data) if isinstance(data, DataConfig) else data
    if frame is None:
        if test is not None:
            raise DataError("--test needs the training data for the texts: pass --data "
                            "TRAIN.csv")
        return ensemble.label_issues(**options)
    require_columns(frame, [settings["label"]], "the training data")
    return ensemble.label_issues(frame, frame[settings["label"]], test=test,
                                 id=settings.get("id"), **options)


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
        table = pd.concat([reference, table])
    table.attrs.update(n_train=len(train), n_valid=len(valid))
    return table, ensemble, valid


def run_demo(config: Config, output: str | Path | None = None,
             submission: str | Path = "submission.csv", report: str | Path | None = None,
             **overrides: Any) -> dict[str, Any]:
    """The demo: holdout table and report, refit on all rows, save, and a Kaggle submission.

    The report evaluates the ensemble fitted on the training split on the
    validation rows, so its numbers are honest; the saved model is refitted on all rows.
    """
    from engine.report import write_report

    start = time.perf_counter()
    table, holdout, valid = holdout_table(config, **overrides)
    result: dict[str, Any] = {"table": table, "submission": None, "report": None}
    if report is not None:
        train = training_rows(config, holdout=True)
        issues = holdout.label_issues(train, train[config.data.label], id=config.data.id)
        result["report"] = write_report(
            holdout, valid, valid[config.data.label], report, title=f"{config.name}: validation",
            source=f"{len(valid)} validation rows of {config.data.train.name} "
                   f"(trained on {table.attrs['n_train']})", issues=issues)
    ensemble, path = fit_config(config, output, **overrides)
    result["model"] = path
    if config.data.test is not None and config.data.sample_submission is not None:
        test = read_table(config.data.test)
        sample = read_table(config.data.sample_submission)
        write_submission(ensemble, test, sample, submission, config.data.id)
        result["submission"] = Path(submission)
    result["seconds"] = time.perf_counter() - start
    return result
