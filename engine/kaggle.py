"""Kaggle submissions: the sample's columns, id order and dtypes, or a refusal that says why."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data import require_columns
from engine.errors import DataError, EnsembleError
from engine.io.outputs import csv_safe, output_file


class KaggleError(EnsembleError):
    """Uploading to Kaggle failed."""


def _examples(values: Any) -> str:
    values = list(values)
    return ", ".join(map(str, values[:3])) + (" ..." if len(values) > 3 else "")


def build_submission(ids: pd.Series, labels: np.ndarray, sample: pd.DataFrame) -> pd.DataFrame:
    """Predicted labels arranged like ``sample``: same columns, id order and dtypes.

    Parameters
    ----------
    ids : Series
        Ids of the predicted rows.
    labels : ndarray
        Predicted labels, one per id.
    sample : DataFrame
        Kaggle's sample submission: the id column first, then the target column.

    Returns
    -------
    DataFrame
    """
    if sample.shape[1] != 2:
        raise DataError(f"sample submission must have an id and a target column, it has "
                        f"{list(sample.columns)}")
    id_col, target_col = sample.columns
    if ids.duplicated().any():
        raise DataError(f"the test data repeats ids ({_examples(ids[ids.duplicated()])}); "
                        f"each id must appear once")
    predicted = pd.Series(labels, index=pd.Index(ids, name=id_col))
    missing = sample[id_col][~sample[id_col].isin(predicted.index)]
    extra = predicted.index[~predicted.index.isin(sample[id_col])]
    if len(missing) or len(extra):
        raise DataError(f"test ids do not match the sample submission: {len(missing)} sample ids "
                        f"not predicted ({_examples(missing)}), {len(extra)} predicted ids not "
                        f"in the sample ({_examples(extra)}); use the test file that goes with it")
    target = predicted.loc[sample[id_col]].to_numpy()
    try:
        cast = pd.Series(target).astype(sample[target_col].dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"predicted labels ({_examples(target)}) cannot take the sample's "
                        f"{target_col} dtype {sample[target_col].dtype}") from exc
    if not (cast.astype(object).to_numpy() == pd.Series(target).astype(object).to_numpy()).all():
        raise DataError(f"predicted labels change value as {sample[target_col].dtype} "
                        f"({_examples(target)}); the model's classes do not fit this competition")
    return pd.DataFrame({id_col: sample[id_col].to_numpy(), target_col: cast.to_numpy()})


def validate_submission(submission: pd.DataFrame, sample: pd.DataFrame) -> None:
    """Raise a DataError unless ``submission`` matches ``sample`` in columns, ids and dtypes."""
    if list(submission.columns) != list(sample.columns):
        raise DataError(f"submission columns {list(submission.columns)} differ from the "
                        f"sample's {list(sample.columns)}")
    id_col = sample.columns[0]
    if len(submission) != len(sample) or not submission[id_col].equals(sample[id_col]):
        raise DataError("submission ids are not the sample's ids in the sample's order")
    for column in sample.columns:
        if submission[column].dtype != sample[column].dtype:
            raise DataError(f"submission column {column} is {submission[column].dtype}, the "
                            f"sample's is {sample[column].dtype}")


def write_submission(ensemble: Any, test: pd.DataFrame | None, sample: pd.DataFrame,
                     path: str | Path, id_column: str | None = None,
                     chunks: Iterable[tuple[pd.DataFrame, pd.DataFrame]] | None = None
                     ) -> pd.DataFrame:
    """Predict ``test`` and write a validated Kaggle submission to ``path`` atomically.

    Instead of ``test``, ``chunks`` may give ``(rows, predictions)`` pairs as
    :func:`engine.streaming.predict_chunks` yields them; only ids and labels
    are kept, so memory does not grow with the texts.
    """
    def id_of(frame: pd.DataFrame) -> str:
        # the model's id column, else the sample's (Kaggle names them alike)
        if id_column and id_column in frame.columns:
            return id_column
        return sample.columns[0] if sample.columns[0] in frame.columns else (id_column or
                                                                             sample.columns[0])

    if chunks is None:
        require_columns(test, [id_of(test)], "the test data")
        ids, labels = test[id_of(test)], ensemble.predict(test)
    else:
        id_parts, label_parts = [], []
        for rows, predictions in chunks:
            require_columns(rows, [id_of(rows)], "the test data")
            id_parts.append(rows[id_of(rows)])
            label_parts.append(predictions["label"].to_numpy())
        ids = pd.concat(id_parts, ignore_index=True)
        labels = np.concatenate(label_parts)
    submission = build_submission(ids, labels, sample)
    validate_submission(submission, sample)
    with output_file(path, newline="") as handle:  # formula-like cells get an apostrophe
        csv_safe(submission).to_csv(handle, index=False)
    return submission


def submit_command(path: str | Path, competition: str, message: str) -> str:
    """The Kaggle CLI command that uploads ``path`` (for users without API credentials here)."""
    return f"kaggle competitions submit -c {shlex.quote(competition)} " \
           f"-f {shlex.quote(str(path))} -m {shlex.quote(message)}"


def upload_submission(path: str | Path, competition: str, message: str) -> bool:
    """Upload ``path`` to a Kaggle competition through the ``kaggle`` package's API.

    Returns
    -------
    bool
        True when uploaded; False when no Kaggle credentials are set up on
        this machine (nothing was sent: run :func:`submit_command` elsewhere).

    Raises
    ------
    KaggleError
        When the upload was tried and failed (network, unknown competition,
        rules not accepted, daily limit), with Kaggle's reason.
    """
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise KaggleError("the kaggle package is not installed: pip install kaggle, or run "
                          f"{submit_command(path, competition, message)}") from None
    api = KaggleApi()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            api.authenticate()
    except SystemExit:  # the kaggle package exits when it finds no credentials
        return False
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.competition_submit(str(path), message, competition, quiet=True)
    except Exception as exc:  # requests, HTTP and API errors all end the upload the same way
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise KaggleError(f"Kaggle did not accept the upload to '{competition}' ({reason}); "
                          f"the file is kept at {path}: check the competition name and that "
                          f"you accepted its rules, or run "
                          f"{submit_command(path, competition, message)}") from exc
    return True
