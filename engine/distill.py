"""Distillation: one fast student learns a fitted ensemble's probabilities.

The student is any member (``"tfidf-lr"``, ``("keras-text", {...})``, an
instance) fitted on soft targets:

- on the teacher's training rows, the teacher's own out-of-fold
  probabilities (:func:`engine.oof.ensemble_oof_proba`), never its refitted
  members' in-sample output, which memorised those rows;
- on unlabeled texts the user adds (Kaggle's test.csv, say), the teacher's
  predictions: labels are never read there.

Plugins learn probabilities through the optional ``fit_soft(X, P)`` of the
plugin protocol; one without it gets the teacher's most probable class.

The result is an :class:`~engine.Ensemble` with the student as its only
member and a ``mean`` combiner, so predicting, saving, loading, serving,
signing and MLflow need nothing new. It has no out-of-fold probabilities of
its own (``oof_`` has no rows): it cannot be distilled, audited or
recombined again, and its manifest records its teacher.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from engine.data import as_python, data_hash, select_texts
from engine.errors import ConfigError, DataError
from engine.evaluation import encode_known
from engine.io.model_dir import ModelParts
from engine.metrics import classification_scores
from engine.oof import ensemble_oof_proba, require_oof
from engine.seeding import seeded
from engine.specs import build_combiner, build_member

# Chosen on benchmarks/results/distill.md (5 outer folds on all 7,613 tweets): word
# n-grams in a logistic regression with weak regularisation (soft targets carry less
# signal per row than labels, so C=16 beats the plugin's C=1 there), about 100x the
# default stack's rows/s. Character n-grams score the same and predict 8x slower.
DEFAULT_STUDENT: tuple[str, dict[str, Any]] = ("tfidf-lr", {"C": 16.0})
STUDENT_NAME = "student"


def soften(P: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities raised to ``1 / temperature`` and renormalised (1 leaves them as they are).

    Below 1 sharpens the teacher's probabilities towards its decisions,
    above 1 flattens them.

    Examples
    --------
    >>> soften(np.array([[0.8, 0.2]]), 0.5).round(3).tolist()
    [[0.941, 0.059]]
    """
    if temperature == 1:
        return P
    logits = np.log(np.clip(P, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def teacher_columns(teacher: Any) -> str | list[str]:
    """Every column the teacher's members read, in the order they first read them.

    Examples
    --------
    >>> from engine import Ensemble
    >>> teacher_columns(Ensemble({"a": "tfidf-nb", "b": "tfidf-lr"},
    ...                          member_text={"a": ["keyword", "text"]}))
    ['keyword', 'text']
    """
    columns: list[str] = []
    for name in teacher.members:
        spec = (teacher.member_text or {}).get(name, teacher.text)
        columns += [c for c in ([spec] if isinstance(spec, str) else spec) if c not in columns]
    return columns[0] if len(columns) == 1 else columns


def fit_student(member: Any, texts: list[str], targets: np.ndarray) -> Any:
    """Fit ``member`` on class probabilities: ``fit_soft`` when it has one, else labels."""
    if callable(getattr(member, "fit_soft", None)):
        return member.fit_soft(texts, targets)
    warnings.warn(f"plugin '{getattr(member, 'name', type(member).__name__)}' has no "
                  f"fit_soft(X, P), so the student learns the teacher's most probable class, "
                  f"not its probabilities", stacklevel=3)
    return member.fit(texts, targets.argmax(axis=1).astype(np.int64))


def training_data(teacher: Any, X: Any, y: Any) -> tuple[Any, Any]:
    """The rows the teacher was fitted on: ``X, y`` checked against its training hash,
    or, when not given, the data a fit in this process kept."""
    if X is None:
        kept = getattr(teacher, "_training_data", None)
        if kept is None:
            raise ConfigError("distill needs the rows the teacher was fitted on: pass X= and "
                              "y= (the CLI: --data TRAIN.csv)")
        return kept
    if y is None:
        raise ConfigError("distill(X=...) needs the labels too: pass y=")
    texts = next(iter(teacher.member_texts(X).values()))
    if len(texts) != teacher.training_["n_rows"] or \
            data_hash(texts, encode_known(teacher.classes_, y)) != teacher.training_["sha256"]:
        raise DataError(f"these {len(texts)} rows are not the {teacher.training_['n_rows']} "
                        f"rows the teacher was fitted on (their hash differs); pass its exact "
                        f"training data, in the same order")
    return X, y


def _unlabeled_frame(teacher: Any, unlabeled: Any, column: str | None) -> Any:
    """The unlabeled data as the teacher reads it (``column`` renamed to its text column)."""
    if not isinstance(unlabeled, pd.DataFrame):
        texts = select_texts(unlabeled)  # a sequence of texts: every member reads it
        if not texts:
            raise DataError("the unlabeled data has no rows; pass texts to label, or none")
        return texts
    frame = unlabeled
    if len(frame) == 0:
        raise DataError("the unlabeled data has no rows; pass texts to label, or none")
    if column is not None:
        if not isinstance(teacher.text, str) or teacher.member_text:
            raise ConfigError(f"the teacher reads several columns ({teacher.text}); give the "
                              f"unlabeled data those columns instead of naming one")
        if column not in frame.columns:
            raise DataError(f"the unlabeled data has no column '{column}' (columns: "
                            f"{', '.join(map(str, frame.columns[:10]))})")
        frame = frame.drop(columns=[teacher.text], errors="ignore").rename(
            columns={column: teacher.text})
    needed = {c for spec in [teacher.text, *(teacher.member_text or {}).values()]
              for c in ([spec] if isinstance(spec, str) else spec)}
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise DataError(f"the unlabeled data has no column '{missing[0]}', which the teacher "
                        f"reads; name its text column (unlabeled_text=, CLI --text COL)")
    return frame


def _teacher_summary(teacher: Any) -> dict[str, Any]:
    """What the student's manifest records of its teacher."""
    manifest = getattr(teacher, "manifest_", None) or {}
    members = manifest.get("members") or [
        {"name": name, "plugin": member.name} for name, member in teacher.members_.items()]
    return {
        "manifest_sha256": getattr(teacher, "manifest_sha256_", None),
        "members": [{k: m[k] for k in ("name", "plugin", "config") if k in m} for m in members],
        "combiner": {"name": teacher.combiner_.name},
        "scores": {k: v for k, v in teacher.scores_["ensemble"].items()
                   if isinstance(v, float | int)},
        "training": dict(teacher.training_),
    }


def cross_validate_student(member: Any, texts: list[str], targets: np.ndarray,
                           codes: np.ndarray, *, cv: int, random_state: int | None
                           ) -> dict[str, float]:
    """The student's scores on held-out labelled rows, K folds of them.

    ``texts`` and ``targets`` are the labelled rows first (one per code),
    then any unlabeled rows, which every fold trains on. A clone learns the
    targets of the other folds and predicts the held-out rows, which are
    scored against their true labels. The targets of the training folds are
    the teacher's out-of-fold probabilities, which come from members that saw
    the held-out rows' labels: a slightly optimistic estimate (the
    benchmark's outer cross-validation refits the teacher and measures the gap).
    """
    from sklearn.base import clone

    n = len(codes)
    proba = np.zeros((n, targets.shape[1]))
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    extra = np.arange(n, len(texts))
    for fit_rows, held in folds.split(np.zeros(n), codes):
        rows = np.concatenate([fit_rows, extra])
        with warnings.catch_warnings():  # fit_student's warning is given once, by the final fit
            warnings.simplefilter("ignore")
            part = fit_student(clone(member), [texts[i] for i in rows], targets[rows])
        proba[held] = part.predict_proba([texts[i] for i in held])
    return {k: v for k, v in classification_scores(codes, proba).items()
            if isinstance(v, float | int)}


def distill(teacher: Any, student: Any = DEFAULT_STUDENT, *, X: Any = None, y: Any = None,
            unlabeled: Any = None, unlabeled_text: str | None = None,
            text: str | list[str] | None = None, temperature: float = 1.0,
            label_weight: float = 0.0, cv: int | None = None) -> Any:
    """A fitted single-member ensemble whose member learned the teacher's probabilities.

    See :meth:`engine.Ensemble.distill`, which calls this.
    """
    require_oof(teacher, "distill it")
    if cv is not None and not (isinstance(cv, int) and not isinstance(cv, bool) and
                               (cv == 0 or 2 <= cv <= 20)):
        raise ConfigError(f"cv must be 0 (no estimate) or 2-20 folds, got {cv!r}")
    if not (isinstance(temperature, int | float) and 0 < temperature <= 100):
        raise ConfigError(f"temperature must be a number in (0, 100], got {temperature!r}")
    if not (isinstance(label_weight, int | float) and 0 <= label_weight <= 1):
        raise ConfigError(f"label_weight must be a number in [0, 1], got {label_weight!r}")
    X, y = training_data(teacher, X, y)
    try:
        member = seeded(build_member(student), teacher.random_state)
    except ConfigError as exc:
        raise ConfigError(f"cannot build the student: {exc}") from None
    columns = teacher_columns(teacher) if text is None else text
    texts = select_texts(X, columns, teacher.fill_na)
    targets = ensemble_oof_proba(teacher)
    if label_weight:
        targets = (1 - label_weight) * targets + label_weight * np.eye(targets.shape[1])[
            encode_known(teacher.classes_, y)]
    unlabeled_record = None
    if unlabeled is not None:
        frame = _unlabeled_frame(teacher, unlabeled, unlabeled_text)
        student_texts = select_texts(frame, columns, teacher.fill_na)
        predicted = teacher.predict_proba(frame)
        texts, targets = [*texts, *student_texts], np.vstack([targets, predicted])
        unlabeled_record = {"n_rows": len(student_texts),
                            "sha256": hashlib.sha256("\0".join(student_texts).encode(
                                "utf-8", "surrogatepass")).hexdigest()}
    targets = soften(targets, float(temperature))
    estimate = None
    if cv:
        codes = encode_known(teacher.classes_, y)
        estimate = cross_validate_student(member, texts, targets, codes, cv=cv,
                                          random_state=teacher.random_state)

    start = time.perf_counter()
    fit_student(member, texts, targets)
    seconds = time.perf_counter() - start

    n_classes = len(teacher.classes_)
    threshold = getattr(teacher, "threshold_", None)
    result = type(teacher)({STUDENT_NAME: member}, combiner="mean", cv=teacher.cv,
                      random_state=teacher.random_state, text=columns, fill_na=teacher.fill_na,
                      threshold=threshold, class_names=getattr(teacher, "class_names", None))
    result._restore(ModelParts(
        members={STUDENT_NAME: member}, fit_seconds={STUDENT_NAME: seconds},
        classes=teacher.classes_, oof=np.zeros((1, 0, n_classes)),
        y_codes=np.zeros(0, dtype=np.int64), oof_features=None,
        training={"n_rows": len(texts), "sha256": data_hash(texts, targets.argmax(axis=1))}))
    result.combiner_ = build_combiner("mean").fit(result.oof_, result.y_codes_, [STUDENT_NAME])
    result.scores_ = {} if estimate is None else {
        "student (cross-validated)": estimate, "teacher (out of fold)": dict(
            teacher.scores_["ensemble"])}
    result.threshold_ = threshold
    result.distilled_from_ = {
        "teacher": _teacher_summary(teacher),
        "unlabeled": unlabeled_record,
        "student": {"plugin": member.name,
                    "config": {k: as_python(v) for k, v in member.get_params(deep=False).items()
                               if isinstance(as_python(v), str | int | float | bool | None)},
                    "learns": "probabilities" if callable(getattr(member, "fit_soft", None))
                    else "most probable class"},
        "targets": "teacher's out-of-fold probabilities on its training rows"
                   + ("; its predictions on the unlabeled rows" if unlabeled is not None else ""),
        "temperature": float(temperature),
        "label_weight": float(label_weight),
        "fit_seconds": seconds,
    }
    return result
