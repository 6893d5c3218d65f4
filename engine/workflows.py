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
    # where the training rows are, for `ensemble distill` (used only if their hash matches)
    settings = {**data_settings(config.data, frame.columns),
                "train": str(Path(config.data.train).resolve())}
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
        table = pd.concat([reference, table]).__finalize__(table)  # keeps attrs["positive"]
    table.attrs.update(n_train=len(train), n_valid=len(valid))
    return table, ensemble, valid


def run_demo(config: Config, output: str | Path | None = None,
             submission: str | Path = "submission.csv", report: str | Path | None = None,
             predictions: str | Path = "predictions.csv", distill: bool = False,
             **overrides: Any) -> dict[str, Any]:
    """The demo: holdout table and report, refit on all rows, save, then a Kaggle submission
    (with ``[data] test`` and ``sample_submission``) or predictions (``test`` alone).

    With ``distill``, a student (:meth:`Ensemble.distill`, the test file as unlabeled
    texts) joins the holdout table, and one distilled from the refitted model is saved
    beside it as ``<model>-student``.

    The report evaluates the ensemble fitted on the training split on the
    validation rows, so its numbers are honest; the saved model is refitted on all rows.
    """
    from engine.report import write_report

    start = time.perf_counter()
    table, holdout, valid = holdout_table(config, **overrides)
    unlabeled = read_table(config.data.test) if config.data.test is not None else None
    row = None
    if distill:  # the student learns the holdout ensemble, so its row is honest too
        student = holdout.distill(unlabeled=unlabeled)
        row = evaluate(student, valid, valid[config.data.label]).loc[["student"]]
        row.index = [f"student ({student.members_['student'].name}, distilled)"]
        row = row.assign(kind="distilled")
        attrs = table.attrs
        table = pd.concat([table, row])
        table.attrs.update(attrs)
    result: dict[str, Any] = {"table": table, "submission": None, "report": None,
                              "predictions": None}
    if report is not None:
        train = training_rows(config, holdout=True)
        issues = holdout.label_issues(train, train[config.data.label], id=config.data.id)
        result["report"] = write_report(
            holdout, valid, valid[config.data.label], report, title=f"{config.name}: validation",
            source=f"{len(valid)} validation rows of {config.data.train.name} "
                   f"(trained on {table.attrs['n_train']})", extra_rows=row,
                   issues=issues)
    ensemble, path = fit_config(config, output, **overrides)
    result["model"] = path
    if distill:
        result["student"] = path.with_name(f"{path.name}-student")
        student = ensemble.distill(unlabeled=unlabeled)
        student.save(result["student"], {**data_settings(config.data), "text": student.text})
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


def _training_file(teacher: Ensemble, data: str | Path | None) -> Path:
    """The teacher's training CSV: ``data``, else the file its fit recorded (checked by hash
    before any use, so a manifest naming another file gains nothing)."""
    from engine.errors import ConfigError

    recorded = (getattr(teacher, "manifest_", None) or {}).get("data", {}).get("train")
    path = Path(data) if data is not None else Path(recorded) if isinstance(recorded, str) \
        else None
    if path is None or not path.is_file():
        where = f"{path} is not a file; " if path is not None else ""
        raise ConfigError(f"{where}pass the teacher's training CSV with --data TRAIN.csv "
                          f"(distillation learns its out-of-fold probabilities of those rows)")
    return path


def rows_per_second(model: Ensemble, frame: Any, repeat: int = 3) -> float:
    """In-process prediction speed on ``frame``: best of ``repeat`` passes after a warm-up."""
    model.predict_proba(frame[:32] if isinstance(frame, list) else frame.head(32))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        model.predict_proba(frame)
        best = min(best, time.perf_counter() - start)
    return len(frame) / best


def distill_model(model: str | Path, output: str | Path, *, student: Any,
                  data: str | Path | None = None, label: str | None = None,
                  unlabeled: str | Path | None = None, unlabeled_text: str | None = None,
                  valid: str | Path | None = None, cv: int = 5, trusted: tuple = (),
                  **settings: Any) -> dict[str, Any]:
    """Distil the saved ensemble ``model`` into ``output`` (``ensemble distill``).

    Returns the teacher's and the student's accuracy (on ``valid`` when
    given, else out of fold and cross-validated), rows/s measured in this
    run on the same texts, and their sizes on disk.
    """
    from engine.ensemble import load_ensemble
    from engine.evaluation import encode_known
    from engine.io.model_dir import tree_bytes
    from engine.metrics import classification_scores

    teacher = load_ensemble(model, trusted)
    saved = teacher.manifest_.get("data", {})
    train_path = _training_file(teacher, data)
    label = label or saved.get("label")
    frame = read_table(train_path)
    require_columns(frame, [label] if label else [], train_path.name)
    extra = None
    if unlabeled is not None:
        extra = read_table(unlabeled)
        if len(extra) == 0:
            from engine.errors import DataError

            raise DataError(f"{Path(unlabeled).name} has no rows; pass a CSV of texts to "
                            f"label, or leave out --unlabeled")
    result = teacher.distill(student, X=frame, y=frame[label], unlabeled=extra,
                             unlabeled_text=unlabeled_text, cv=None if valid else cv,
                             **settings)
    result.save(output, {**saved, "text": result.text, "train": None})
    summary: dict[str, Any] = {"student": result.distilled_from_["student"]["plugin"],
                               "output": Path(output)}
    timing = read_table(valid) if valid is not None else (extra if extra is not None
                                                          else frame).head(2000)
    if valid is not None:
        require_columns(timing, [label], Path(valid).name)
        codes = encode_known(teacher.classes_, timing[label])
    for who, ensemble, path in (("teacher", teacher, Path(model)), ("student", result,
                                                                      Path(output))):
        summary[f"{who}_rows_s"] = rows_per_second(ensemble, timing)
        summary[f"{who}_mb"] = tree_bytes(path) / 1e6
        if valid is not None:
            pred, proba = ensemble.predict_with_proba(timing)
            summary[f"{who}_scores"] = classification_scores(
                codes, proba, encode_known(teacher.classes_, pred))
    if valid is None:
        summary["teacher_scores"] = teacher.scores_["ensemble"]
        summary["student_scores"] = result.scores_.get("student (cross-validated)")
    summary["where"] = f"on {Path(valid).name}" if valid is not None else \
        "out of fold / cross-validated"
    return summary
