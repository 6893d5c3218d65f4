"""Reading tables, selecting text columns, encoding labels and checking input."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from engine.constraints import Interval, check_param
from engine.errors import DataError, did_you_mean

CSV_ERRORS = (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError)


def _csv_error(path: Path, exc: Exception) -> DataError:
    """A one-line DataError saying why ``path`` could not be read and what to do."""
    if isinstance(exc, UnicodeDecodeError):
        return DataError(f"{path.name} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                         f"save it as UTF-8 CSV and try again")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"cannot read {path.name} as CSV: {first}")


def read_table(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV file with pandas; a clear error if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        # utf-8-sig drops a byte-order mark that would otherwise rename the first column.
        return pd.read_csv(path, encoding="utf-8-sig", **kwargs)
    except CSV_ERRORS as exc:
        raise _csv_error(path, exc) from exc


def read_chunks(path: str | Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Read a CSV file ``chunk_size`` rows at a time, with :func:`read_table`'s errors."""
    check_param("chunk size", chunk_size, [Interval(int, 1, None)])
    path = Path(path)
    reader = read_table(path, chunksize=chunk_size)
    try:
        with reader:
            yield from reader
    except CSV_ERRORS as exc:
        raise _csv_error(path, exc) from exc


def require_columns(frame: pd.DataFrame, columns: Sequence[str], where: str = "data",
                    fix: str = "") -> None:
    """Raise a DataError naming the first missing column and the closest existing one
    (and ``fix``, what to do, when given)."""
    for column in columns:
        if column not in frame.columns:
            raise DataError(f"column '{column}' not found in {where}"
                            f"{did_you_mean(column, map(str, frame.columns))}; "
                            f"columns are: {', '.join(map(str, frame.columns))}{fix}")


def as_python(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (anything else unchanged).

    Examples
    --------
    >>> as_python(np.int64(3)), as_python("x")
    (3, 'x')
    """
    return value.item() if isinstance(value, np.generic) else value


def as_text_list(X: Any, fill_na: str | None = None) -> list[str]:
    """X (a sequence of texts, not a DataFrame) as a list of str.

    Missing values (None, NaN) become ``fill_na`` when it is given; any other
    non-text row is an error that names the rows and the fix.

    Examples
    --------
    >>> as_text_list(["a fire", None], fill_na="")
    ['a fire', '']
    """
    if isinstance(X, str):
        raise DataError("X must be a sequence of texts, not a single string; wrap it in a list")
    try:
        texts = X.tolist() if isinstance(X, (pd.Series, np.ndarray)) else list(X)
    except TypeError:
        raise DataError(f"X must be a sequence of texts, got {type(X).__name__}") from None
    bad = np.array([not isinstance(t, str) for t in texts], dtype=bool)
    if bad.any() and fill_na is not None:
        missing = [t is None or (isinstance(t, float) and np.isnan(t)) for t in texts]
        texts = [fill_na if m else t for t, m in zip(texts, missing, strict=True)]
        bad = np.array([not isinstance(t, str) for t in texts], dtype=bool)
    if bad.any():
        _raise_missing(np.flatnonzero(bad), "fill_na='' for missing values, or convert "
                                            "them to str first")
    return _unicode_only(texts)


def select_texts(X: Any, text: str | Sequence[str] = "text",
                 fill_na: str | None = None) -> list[str]:
    """The texts a member reads: a sequence as given, or DataFrame column(s) joined by spaces.

    Parameters
    ----------
    X : sequence of str or DataFrame
    text : str or list of str, default="text"
        Column(s) to read when X is a DataFrame.
    fill_na : str or None, default=None
        Replacement for missing texts; missing texts are an error when None.

    Returns
    -------
    list of str
    """
    if isinstance(X, pd.DataFrame):
        columns = [text] if isinstance(text, str) else list(text)
        strings = [str(c) for c in X.columns if X[c].dtype.kind in "OUT" or
                   pd.api.types.is_string_dtype(X[c].dtype)]
        require_columns(X, columns, fix=f"; name the text column with text='{strings[0]}' "
                                        f"(Ensemble(..., text=...), or text=[...] for several)"
                        if strings else "")
        parts = X[columns]
        if fill_na is not None:
            parts = parts.fillna(fill_na)
        missing = parts.isna().any(axis=1).to_numpy()
        if missing.any():
            _raise_missing(np.flatnonzero(missing), "fill_na='' (CLI: --fill-na '')")
        if len(columns) > 1:  # column-wise concatenation: a row-wise join is 10x slower
            strings = parts.astype(str)
            values = strings.iloc[:, 0]
            for column in range(1, len(columns)):
                values = values + " " + strings.iloc[:, column]
        else:
            values = parts.iloc[:, 0]
        return _unicode_only([str(v) if not isinstance(v, str) else v for v in values])
    return as_text_list(X, fill_na)


def not_unicode(texts: Sequence[str]) -> list[int]:
    """Positions of the texts holding a lone surrogate: not Unicode text, UTF-8 cannot hold
    it, and the members that encode their texts (TensorFlow, the sentence encoder) fail on it.

    Examples
    --------
    >>> not_unicode(["fire", "half \\ud800 a pair"])
    [1]
    """
    try:
        "".join(texts).encode("utf-8")  # one pass in C for the usual case
    except UnicodeEncodeError:
        return [i for i, text in enumerate(texts) if not text.isascii()
                and any("\ud800" <= c <= "\udfff" for c in text)]
    return []


def _unicode_only(texts: list[str]) -> list[str]:
    bad = not_unicode(texts)
    if bad:
        shown = ", ".join(str(r) for r in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise DataError(f"rows {shown} hold a lone surrogate, which is not Unicode text; "
                        f"decode the input as UTF-8 (errors='replace' keeps the rest of "
                        f"each text)")
    return texts


def _raise_missing(rows: np.ndarray, fix: str) -> None:
    shown = ", ".join(str(r) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
    raise DataError(f"{len(rows)} rows have missing or non-text values (rows {shown}); "
                    f"pass {fix}")


def numeric_columns(X: Any, columns: Sequence[str] | None) -> np.ndarray | None:
    """The named numeric DataFrame columns as a float array, or None when none are asked for."""
    if not columns:
        return None
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"passthrough columns {list(columns)} need X as a DataFrame")
    require_columns(X, columns)
    try:
        values = X[list(columns)].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"passthrough columns {list(columns)} must be numeric") from exc
    if not np.isfinite(values).all():
        raise DataError(f"passthrough columns {list(columns)} contain missing values")
    return values


def label_types(values: Iterable[Any]) -> list[str]:
    """The type names among ``values``, sorted: labels must have one, at fit and at load.

    Labels of two types can be equal (``1 == True``) or print alike (``'1'``
    and ``1``), so two classes would share one output column.
    """
    return sorted({type(v).__name__ for v in values})


def label_column(X: Any, y: Any) -> Any:
    """``y`` itself, or the column of the DataFrame ``X`` that ``y`` names.

    Examples
    --------
    >>> label_column(pd.DataFrame({"text": ["a", "b"], "topic": ["x", "y"]}), "topic").tolist()
    ['x', 'y']
    """
    if not isinstance(y, str):
        return y
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"y={y!r} names a label column, which needs X as a DataFrame; pass the "
                        f"labels themselves, one per text")
    require_columns(X, [y], "X", fix="; y is the labels, or the name of X's label column")
    return X[y]


def encode_labels(y: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode labels (str, int or bool) as codes 0..K-1 in sorted class order.

    Returns
    -------
    codes : ndarray of int64, shape (n_rows,)
    classes : ndarray, shape (K,)
    """
    # Through pandas, not np.asarray: numpy would turn [0, "x"] into strings silently.
    if isinstance(y, (pd.Series, pd.Index)):
        values = y.to_numpy()
    elif isinstance(y, np.ndarray):
        values = y
    else:
        values = pd.Series(list(y), dtype=None if len(y) else object).to_numpy()
    if values.ndim != 1:
        raise DataError(f"y must be one label per row, got shape {values.shape}")
    if len(values) != n_rows:
        raise DataError(f"X has {n_rows} rows but y has {len(values)} labels; "
                        f"pass one label per row")
    if len(values) == 0:
        raise DataError("no training rows: the data is empty")
    missing = pd.isna(values)
    if np.any(missing):
        _raise_missing(np.flatnonzero(missing), "a label for every row (drop unlabelled rows)")
    if values.dtype == object and len(kinds := label_types(values)) > 1:
        raise DataError(f"labels mix types ({', '.join(kinds)}); "
                        f"convert them to one type, e.g. all str")
    classes, codes = np.unique(values, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"need at least two classes to train, found only {classes.tolist()}")
    return codes.astype(np.int64), classes


def class_display_names(classes: np.ndarray, class_names: Any = None) -> list[str]:
    """What reports call each class, in code order: ``class_names`` (a list in sorted label
    order, or a mapping label -> name, as Hugging Face's ``id2label``) or the labels.

    Examples
    --------
    >>> class_display_names(np.array([0, 1]), ["ham", "spam"])
    ['ham', 'spam']
    >>> class_display_names(np.array([0, 1]), {1: "spam"})
    ['0', 'spam']
    """
    shown = [str(as_python(c)) for c in classes]
    if class_names is None:
        return shown
    if isinstance(class_names, Mapping):
        names = {str(k): v for k, v in class_names.items()}
        unknown = sorted(set(names) - set(shown))
        if unknown:
            raise DataError(f"class_names names labels {unknown} that are not classes "
                            f"({', '.join(shown)})")
        values = [names.get(label, label) for label in shown]
    elif isinstance(class_names, (list, tuple)):
        if len(class_names) != len(classes):
            raise DataError(f"class_names has {len(class_names)} names for {len(classes)} "
                            f"classes ({', '.join(shown)}); give one per class, in that order")
        values = list(class_names)
    else:
        raise DataError(f"class_names must be a list of names or a dict of label -> name, got "
                        f"{type(class_names).__name__}")
    if not all(isinstance(v, str) and v for v in values) or len(set(values)) != len(values):
        raise DataError("class_names must be different non-empty strings")
    return values


def check_folds(codes: np.ndarray, classes: np.ndarray, cv: int) -> None:
    """Every class needs at least ``cv`` rows for stratified K-fold."""
    counts = np.bincount(codes, minlength=len(classes))
    smallest = int(np.argmin(counts))
    label = as_python(classes[smallest])
    if counts[smallest] < 2:
        raise DataError(f"class {label!r} has only 1 row; out-of-fold training needs at least "
                        f"2 rows per class (and cv rows for cv folds): add rows or drop the "
                        f"class")
    if counts[smallest] < cv:
        raise DataError(f"class {label!r} has {counts[smallest]} rows, fewer than "
                        f"cv={cv} folds; lower cv or add rows of that class")


def data_hash(texts: Sequence[str], codes: np.ndarray) -> str:
    """sha256 of the training texts and labels, to tell datasets apart in the manifest."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    digest.update(np.ascontiguousarray(codes, dtype=np.int64).tobytes())
    return digest.hexdigest()


def holdout_split(frame: pd.DataFrame, test_size: float = 0.1,
                  random_state: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shuffle, then split off a validation set, as the disaster-tweets tutorial does.

    ``frame.sample(frac=1, random_state)`` followed by ``train_test_split(...,
    test_size, random_state)`` gives the tutorial's reference split
    (6,851 / 762 tweets for test_size=0.1, random_state=42).
    """
    if not 0 < test_size < 1:
        raise DataError(f"validation split must be between 0 and 1, got {test_size}")
    shuffled = frame.sample(frac=1, random_state=random_state)
    train, valid = train_test_split(shuffled, test_size=test_size, random_state=random_state)
    return train, valid
