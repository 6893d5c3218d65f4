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


def read_labelled(path: Path | None, data: DataConfig) -> pd.DataFrame:
    """Read a training table and check that its text and label columns exist."""
    if path is None:
        from engine.errors import ConfigError

        raise ConfigError("the config has no [data] train = \"path/to/train.csv\"")
    frame = read_table(path)
    text = [data.text] if isinstance(data.text, str) else list(data.text)
    require_columns(frame, [*text, data.label], path.name)
    return frame


def data_settings(data: DataConfig) -> dict[str, Any]:
    """The column names a saved model needs to read new files."""
    return {"text": data.text, "label": data.label, "id": data.id, "fill_na": data.fill_na}


def fit_config(config: Config, output: str | Path | None = None) -> tuple[Ensemble, Path]:
    """Fit the config's ensemble on all its training rows and save it.

    Returns
    -------
    (Ensemble, Path)
        The fitted ensemble and the model directory (``models/<name>`` by default).
    """
    ensemble = config.build_ensemble()
    frame = read_labelled(config.data.train, config.data)
    ensemble.fit(frame, frame[config.data.label])
    path = Path(output) if output else MODELS_DIR / config.name
    ensemble.save(path, data_settings(config.data))
    return ensemble, path


def holdout_table(config: Config) -> tuple[pd.DataFrame, Ensemble]:
    """Fit on the config's training split and score every member and combiner on the rest."""
    frame = read_labelled(config.data.train, config.data)
    train, valid = holdout_split(frame, config.data.validation_split, config.data.split_seed)
    ensemble = config.build_ensemble().fit(train, train[config.data.label])
    table = evaluate(ensemble, valid, valid[config.data.label])
    reference = pd.DataFrame(config.reference).set_index("name") if config.reference else None
    if reference is not None:
        reference.insert(0, "kind", "reference")
        table = pd.concat([reference, table])
    table.attrs.update(n_train=len(train), n_valid=len(valid))
    return table, ensemble


def run_demo(config: Config, output: str | Path | None = None,
             submission: str | Path = "submission.csv") -> dict[str, Any]:
    """The demo: holdout table, refit on all rows, save, and a validated Kaggle submission."""
    start = time.perf_counter()
    table, _ = holdout_table(config)
    ensemble, path = fit_config(config, output)
    result: dict[str, Any] = {"table": table, "model": path, "submission": None}
    if config.data.test is not None and config.data.sample_submission is not None:
        test = read_table(config.data.test)
        sample = read_table(config.data.sample_submission)
        write_submission(ensemble, test, sample, submission, config.data.id)
        result["submission"] = Path(submission)
    result["seconds"] = time.perf_counter() - start
    return result
