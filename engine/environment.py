"""Environment variables set for worker processes, put back when the call that set them ends."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def restoring(*names: str) -> Iterator[None]:
    """Within this block ``names`` may be set (workers read them); afterwards each is as before.

    A caller's environment is its own: a CLI call or ``serve`` run from Python must not
    leave its flags behind for the caller's next call.
    """
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
