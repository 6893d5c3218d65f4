"""Safe persistence of scikit-learn objects with skops (no pickle on load)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import skops.io as sio

from engine.errors import ModelDirectoryError

# Extra types the user vouched for, e.g. ``engine.load(path, trusted=[...])``.
_extra_trusted: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "extra_trusted", default=())


@contextlib.contextmanager
def trusting(types: Iterable[str]) -> Iterator[None]:
    """Within this block, also trust these fully-qualified type names."""
    token = _extra_trusted.set(_extra_trusted.get() + tuple(types))
    try:
        yield
    finally:
        _extra_trusted.reset(token)


def dump_estimator(estimator: Any, path: str | Path) -> None:
    """Write a (fitted) scikit-learn object to ``path`` in skops format."""
    sio.dump(estimator, Path(path))


def load_estimator(path: str | Path) -> Any:
    """Load a skops file, refusing any type that is not trusted."""
    path = Path(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises many kinds on a damaged file
        raise ModelDirectoryError(f"{path.name} is not a readable skops file ({exc})") from exc
    refused = sorted(set(untrusted) - set(_extra_trusted.get()))
    if refused:
        raise ModelDirectoryError(
            f"{path.name} holds types that are not trusted by default: {', '.join(refused)}; "
            f"if you trust the model's source, load it with trusted=[...] naming them")
    return sio.load(path, trusted=list(untrusted))
