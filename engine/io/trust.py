"""What the user vouched for at load time, and strings that came from a model directory.

A model directory is hostile until checked, so a string read from it is kept
as a :class:`StoredString`: it compares and prints like any ``str``, and
survives ``clone`` and ``copy.deepcopy``, but the places that would follow it
(an import string, a TF Hub handle, a preset path or URL) refuse it unless
the user named the same string in ``engine.load(path, trusted=[...])`` /
``--trust``. So loading, predicting and even refitting a loaded model never
run anything the directory chose.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

from engine.errors import ModelDirectoryError

# Type names (skops), import strings, handles and paths the user vouched for.
_trusted: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "trusted", default=())


@contextlib.contextmanager
def trusting(names: Iterable[str]) -> Iterator[None]:
    """Within this block, also trust these type names, import strings, handles or paths."""
    token = _trusted.set(_trusted.get() + tuple(str(n) for n in names))
    try:
        yield
    finally:
        _trusted.reset(token)


def trusted_names() -> tuple[str, ...]:
    """Everything the caller vouched for in the enclosing :func:`trusting` blocks."""
    return _trusted.get()


class StoredString(str):
    """A string read from a model directory: shown and compared like a str, never followed."""

    __slots__ = ()


def mark_stored(value: Any) -> Any:
    """``value`` with every string in it (not trusted by the caller) made a StoredString."""
    if isinstance(value, str) and not isinstance(value, StoredString):
        return value if value in _trusted.get() else StoredString(value)
    if isinstance(value, dict):
        return {k: mark_stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mark_stored(v) for v in value]
    if isinstance(value, tuple):
        return tuple(mark_stored(v) for v in value)
    return value


def refuse_stored(value: Any, what: str) -> None:
    """Raise if ``value`` came from a model directory and would now be followed.

    Parameters
    ----------
    value : Any
        A string about to be imported, loaded or opened.
    what : str
        What following it would do, e.g. ``"import string"``.

    Raises
    ------
    ModelDirectoryError
        When ``value`` is a :class:`StoredString`.

    Examples
    --------
    >>> refuse_stored("sklearn.linear_model:LogisticRegression", "import string")
    >>> refuse_stored(StoredString("os:system"), "import string")
    Traceback (most recent call last):
    ...
    engine.errors.ModelDirectoryError: the model directory names the import string 'os:system', \
which loading never follows (it could run code); if you trust it, load with \
trusted=['os:system'] (CLI: --trust 'os:system')
    """
    if isinstance(value, StoredString):
        raise ModelDirectoryError(
            f"the model directory names the {what} '{value}', which loading never follows "
            f"(it could run code); if you trust it, load with trusted=['{value}'] "
            f"(CLI: --trust '{value}')")
