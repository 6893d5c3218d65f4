"""Safe persistence of scikit-learn objects with skops (no pickle on load).

Only types skops trusts by default, types a plugin declares and types the
user vouches for (``trusted=``) are loaded. A vectorizer's regular expression
and n-gram range are code in all but name (a catastrophic-backtracking
``token_pattern`` stalls prediction for minutes), so a loaded one must use a
known pattern and a bounded range unless the user trusts the pattern.

Integers a fitted object uses as indices are checked against the size they
index: scipy trusts a sparse matrix's column indices, so a saved vocabulary
index of 10**9 or -2000 would make the first product read memory it does not
own (a crash of the interpreter, not an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio

from engine.errors import ConfigError, ModelDirectoryError
from engine.io.files import check_archive
from engine.io.trust import trusted_names, trusting

__all__ = ["check_saveable", "dump_estimator", "load_estimator", "trusting"]

# scikit-learn's default and the patterns the built-in plugins write.
KNOWN_TOKEN_PATTERNS = {r"(?u)\b\w\w+\b", r"(?u)\b\w+\b", r"\S+", r"(?u)\b\w+\b|[^\w\s]"}
MAX_NGRAM = 16


def dump_estimator(estimator: Any, path: str | Path) -> None:
    """Write a (fitted) scikit-learn object to ``path`` in skops format."""
    sio.dump(estimator, Path(path))


def load_estimator(path: str | Path) -> Any:
    """Load a skops file, refusing any type that is not trusted.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`dump_estimator`.

    Returns
    -------
    Any
        The estimator, with its vectorizers' patterns and ranges checked.

    Raises
    ------
    ModelDirectoryError
        For a damaged file, an untrusted type or an unknown token pattern.
    """
    path = Path(path)
    check_archive(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises many kinds on a damaged file
        raise ModelDirectoryError(f"{path.name} is not a readable skops file ({exc})") from exc
    refused = sorted(set(untrusted) - set(trusted_names()))
    if refused:
        raise ModelDirectoryError(
            f"{path.name} holds types that are not trusted by default: {', '.join(refused)}; "
            f"if you trust the model's source, load it with trusted=[...] naming them")
    estimator = sio.load(path, trusted=list(untrusted))
    _check_text_params(estimator, path.name)
    return estimator


def check_saveable(estimator: Any, name: str) -> None:
    """ConfigError for a setting inside ``estimator`` that :func:`load_estimator` refuses
    whatever the user trusts (n-gram range, ``input``, ``memory``): ``fit`` checks these
    first, so it never saves a model its own load refuses. Token patterns may be trusted
    at load, so they are left to it."""
    try:
        _check_text_params(estimator, name, patterns=False)
    except ModelDirectoryError as exc:
        raise ConfigError(str(exc).replace("; refusing to load", "")) from None


def _check_text_params(estimator: Any, name: str, patterns: bool = True) -> None:
    """Check every object inside ``estimator``: fitted copies and private helpers included."""
    seen: set[int] = set()
    stack = [estimator]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (str, bytes, int, float, bool)):
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            attributes = vars(item)
            if any(key in attributes for key in ("token_pattern", "ngram_range", "memory")):
                _check_params(attributes, name, patterns)
            if isinstance(attributes.get("vocabulary_"), dict):
                _check_vocabulary(attributes, name)
            stack.extend(attributes.values())


def _check_params(params: dict[str, Any], name: str, patterns: bool = True) -> None:
    pattern = params.get("token_pattern")
    if patterns and pattern is not None and pattern not in KNOWN_TOKEN_PATTERNS \
            and pattern not in trusted_names():
        raise ModelDirectoryError(
            f"{name} sets token_pattern {pattern!r}, which is not a known pattern (a regular "
            f"expression can stall prediction); if you trust it, load with "
            f"trusted=[{pattern!r}]")
    ngrams = params.get("ngram_range", (1, 1))
    if not isinstance(ngrams, tuple) or len(ngrams) != 2 \
            or not all(isinstance(n, int) for n in ngrams) \
            or not 1 <= ngrams[0] <= ngrams[1] <= MAX_NGRAM:
        raise ModelDirectoryError(f"{name} sets ngram_range {ngrams!r}; a saved vectorizer "
                                  f"needs 1 <= min <= max <= {MAX_NGRAM}")
    if params.get("input", "content") != "content":
        raise ModelDirectoryError(f"{name} sets a vectorizer's input={params['input']!r}, "
                                  f"which would open texts as file names; refusing to load")
    # joblib's Memory unpickles what it finds at that location when a refit runs
    if params.get("memory") is not None:
        raise ModelDirectoryError(f"{name} sets memory={params['memory']!r}, a cache "
                                  f"location that joblib would read pickles from; a saved "
                                  f"estimator must have memory=None")


def _is_index(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_vocabulary(attributes: dict[str, Any], name: str) -> None:
    """A fitted vocabulary maps its terms onto 0..n-1, each column once, as fit makes it.

    The column indices of every matrix the vectorizer builds come from these
    values, unchecked by scipy; the idf weights must cover the same columns.
    """
    vocabulary = attributes["vocabulary_"]
    size = len(vocabulary)
    indices = list(vocabulary.values())
    if not all(_is_index(i) for i in indices) \
            or len({int(i) for i in indices}) != size \
            or size and not (min(indices) == 0 and max(indices) == size - 1):
        raise ModelDirectoryError(
            f"{name} holds a vocabulary whose column indices are not 0..{size - 1}, each "
            f"once (a column outside the matrix would corrupt memory); refusing to load")
    idf = getattr(attributes.get("_tfidf"), "idf_", None)
    if idf is not None and np.shape(idf) != (size,):
        raise ModelDirectoryError(
            f"{name} holds {np.shape(idf)} idf weights for a vocabulary of {size} terms; "
            f"refusing to load")
