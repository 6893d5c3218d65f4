"""Atomic writes under locks: a file or a whole directory is replaced in one rename.

A write goes to a hidden temporary sibling first and is renamed over the
target only when complete, so a failed or killed writer never leaves half a
file (or half a model) behind, and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# A writer locks its temporary from the moment it exists; one unlocked and this old
# belongs to a killed writer (a kill releases the lock) and can be removed.
STALE_TEMPORARY_SECONDS = 30


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    The temporary is locked while it is written, so the next write to ``path``
    can tell a killed writer's temporary from a live one and removes it.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_write(target) as handle:
    ...     _ = handle.write("all or nothing")
    >>> target.read_text()
    'all or nothing'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, mode, **kwargs) as handle:
            _try_lock(handle.fileno())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock without waiting; False if another process holds one."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, so dead temporaries are left alone
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _remove_dead_temporaries(path: Path) -> None:
    for sibling in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        try:
            with open(sibling, "rb") as handle:
                old = time.time() - os.fstat(handle.fileno()).st_mtime > STALE_TEMPORARY_SECONDS
                if old and _try_lock(handle.fileno()):
                    sibling.unlink()
        except OSError:
            continue  # finished or removed meanwhile, or not ours to read


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s lock file (released by the kernel if killed)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: saves are still atomic, just not serialised
        yield
        return
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``path``; on success it replaces ``path`` whole.

    Saves to one path take an exclusive lock (``.NAME.lock`` beside it): two
    processes writing there at once are serialised, and the last one wins
    whole. The old and new directories are exchanged in one atomic
    ``renameat2(RENAME_EXCHANGE)`` on Linux.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        _remove_leftovers(path)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
            _fsync_tree(tmp)
            _swap_in(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def recover_if_interrupted(path: Path) -> None:
    """Put back a directory that a killed save left aside, before reading ``path``."""
    if not path.exists() and any(path.parent.glob(f".{glob.escape(path.name)}.old-*")):
        with locked(path):
            _recover(path)


def _remove_leftovers(path: Path) -> None:
    """Delete temporaries of saves that were killed (safe: we hold the lock)."""
    if not path.exists():
        _recover(path)
    for sibling in path.parent.glob(f".{glob.escape(path.name)}.*-*"):
        if sibling.is_dir() and sibling.name.rsplit("-", 1)[0] in (
                f".{path.name}.tmp", f".{path.name}.old"):
            shutil.rmtree(sibling, ignore_errors=True)


def _recover(path: Path, marker: str = "manifest.json") -> bool:
    """Put back a directory a save killed between two renames left aside (non-Linux)."""
    for old in sorted(path.parent.glob(f".{glob.escape(path.name)}.old-*")):
        if (old / marker).is_file() and not path.exists():
            os.rename(old, path)
            return True
    return False


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2; False where it is unavailable."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as handle:
                os.fsync(handle.fileno())


def _swap_in(tmp: Path, path: Path) -> None:
    if path.exists() and _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old directory
        return
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
