"""Where the CLI writes its output files (``-o``), and how output CSV cells are written.

``-o FILE`` replaces a regular file atomically (:func:`engine.io.atomic.atomic_write`).
``-o -``, ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N`` and a FIFO are
streamed through, as Unix tools do (a failure midway leaves what was already
written there). Anything else that exists and is not a regular file (a
device, a socket, a directory, a symbolic link) is refused and left as it
is, and so is a path inside a model directory, which an extra file would make
unloadable.

Output CSV cells that a spreadsheet would run as a formula (text starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return that is not a
number) get a leading apostrophe, as OWASP advises for CSV injection: ids and
labels come from files that strangers may have written. So does every line
inside a cell (``x\\r=2+2``): a reader that ends rows at a bare carriage return
would start a row there.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine.errors import EnsembleError
from engine.io.atomic import atomic_write, refuse_link
from engine.io.integrity import MANIFEST

if TYPE_CHECKING:
    import pandas as pd

STDOUT_NAMES = {"-": 1, "/dev/stdout": 1, "/dev/stderr": 2}
_FD_PATH = re.compile(r"/(?:dev|proc/self)/fd/(\d+)")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def stream_fd(path: str | Path) -> int | None:
    """The descriptor ``path`` names (``-``, ``/dev/stdout``, ``/dev/fd/N``), else None."""
    text = str(path)
    if text in STDOUT_NAMES:
        return STDOUT_NAMES[text]
    match = _FD_PATH.fullmatch(text)
    return int(match.group(1)) if match else None


def to_stdout(path: str | Path | None) -> bool:
    """Whether writing ``path`` writes to standard output (so messages go to stderr)."""
    return path is not None and stream_fd(path) == 1


def model_directory_around(path: str | Path) -> Path | None:
    """The model directory ``path`` would be inside, if any."""
    # both as written and with links resolved: `-o link/out.csv` where link -> model/members
    for spelled in (os.path.abspath(path), os.path.realpath(path)):
        for parent in Path(spelled).parents:
            if (parent / MANIFEST).is_file():
                return parent
    return None


def check_output(path: str | Path) -> None:
    """Refuse an output path that is a link or inside a model directory (one line saying why).

    The CLI checks every ``-o`` before it starts, so a long fit never ends refused.
    """
    if stream_fd(path) is not None:
        return
    refuse_link(Path(path))
    model = model_directory_around(path)
    if model is not None:
        raise EnsembleError(f"{path} is inside the model directory {model}; a file added there "
                            f"makes the model unloadable: write it somewhere else")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


@contextlib.contextmanager
def output_file(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open the CLI's output ``path`` for writing: atomically, or streamed (see module doc)."""
    check_output(path)
    fd = stream_fd(path)
    if fd is not None:
        with open(os.dup(fd), mode, **kwargs) as handle:
            yield handle
        return
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISFIFO(info.st_mode):
        with open(path, mode, **kwargs) as handle:  # a FIFO: its reader gets the rows
            yield handle
        return
    if info is not None and not stat.S_ISREG(info.st_mode):
        extra = f" to {os.path.realpath(path)}" if stat.S_ISLNK(info.st_mode) else ""
        raise EnsembleError(f"{path} is {_kind(info.st_mode)}{extra}; refusing to replace it: "
                            f"write to a regular file, a FIFO, or '-' for standard output")
    with atomic_write(path, mode, **kwargs) as handle:
        yield handle


def _guarded(text: str) -> str:
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _safe_cell(value: Any) -> Any:
    """A formula-like cell gets its apostrophe, and so does every line inside a cell: a
    reader that ends rows at a bare CR (which CSV writers leave unquoted) starts a row there."""
    if not isinstance(value, str):
        return value
    if "\r" not in value and "\n" not in value:
        return _guarded(value)
    parts = _LINE_BREAK.split(value)  # the breaks at odd positions
    return "".join(part if i % 2 else _guarded(part) for i, part in enumerate(parts))


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with formula-like text cells and column names prefixed by an apostrophe.

    Examples
    --------
    >>> import pandas as pd
    >>> csv_safe(pd.DataFrame({"id": ["=HYPERLINK(\\"http://x\\")", "-1.5", "@a"]}))["id"].tolist()
    ['\\'=HYPERLINK("http://x")', '-1.5', "'@a"]
    >>> csv_safe(pd.DataFrame({"id": ["x\\r=2+2"]}))["id"].tolist()
    ["x\\r'=2+2"]
    """
    from pandas.api.types import is_string_dtype

    out = frame.copy(deep=False)
    for column in out.columns:
        if out[column].dtype == object or is_string_dtype(out[column]):
            out[column] = out[column].map(_safe_cell)
    out.columns = [_safe_cell(c) for c in out.columns]
    return out
