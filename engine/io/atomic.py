"""Atomic writes under locks: a file or a whole directory is replaced in one rename.

A write goes to a hidden temporary sibling first and is renamed over the
target only when complete, so a failed or killed writer never leaves half a
file (or half a model) behind, and never destroys the previous one.

Only what a writer created is ever deleted: temporaries have unique names in
one strict pattern (``.NAME.tmp-<16 hex>``), a directory save also keeps a
marker file (``.NAME.save-<16 hex>``) locked for as long as it runs, and a
leftover is removed only when its name matches, it is what we create (a
regular file, or a directory with a marker) and its writer is dead (the lock
is free). A user's ``.NAME.old-backup`` or ``.NAME.tmp-notes`` is never touched.

Readers of a model directory hold a shared lock on it (:func:`read_consistently`);
a save writes its new directory without locks and takes them exclusively only
to swap the directories, so a load never sees half of one save and half of
another, and waits at most for that swap. Any process that can read a
directory can also lock it, so no lock is waited for longer than
``ENSEMBLE_LOCK_TIMEOUT`` seconds (default 60): then one line says who to
look for.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from engine.errors import EnsembleError, ModelDirectoryError

# A writer locks its temporary from the moment it exists; one unlocked and this old
# belongs to a killed writer (a kill releases the lock) and can be removed.
STALE_TEMPORARY_SECONDS = 30
LOCK_TIMEOUT_ENV = "ENSEMBLE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 60.0  # a save holds a lock only to swap; far longer is someone else
TOKEN_HEX = 16
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# Model directories this process reads under a shared lock (see recover_if_interrupted).
_reading: set[str] = set()
T = TypeVar("T")


def _token() -> str:
    return uuid.uuid4().hex[:TOKEN_HEX]


def _sibling(path: Path, kind: str, token: str) -> Path:
    return path.parent / f".{path.name}.{kind}-{token}"


def _siblings(path: Path, kind: str) -> Iterator[tuple[Path, str]]:
    """Siblings named ``.NAME.KIND-<16 hex>`` (only ours), with their token."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{kind}-([0-9a-f]{{{TOKEN_HEX}}})")
    for sibling in path.parent.glob(f".{glob.escape(path.name)}.{kind}-*"):
        match = pattern.fullmatch(sibling.name)
        if match:
            yield sibling, match.group(1)


def refuse_link(path: Path) -> None:
    """Refuse to write over a symbolic link (the write would replace the link itself)."""
    if path.is_symlink():
        raise EnsembleError(f"{path} is a symbolic link; refusing to replace it: give the "
                            f"path it points to ({os.path.realpath(path)}) or a new path")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", tmp_for: Path | None = None,
                 **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    The temporary is locked while it is written, so the next write to ``path``
    can tell a killed writer's temporary from a live one and removes it. An
    existing ``path`` must be a regular file (never a link, device or FIFO:
    see :mod:`engine.io.outputs` for streaming into those); its permission
    bits are kept. ``tmp_for`` names the temporary as one of that path's
    (on the same file system): a file written into a model directory keeps
    its temporary outside, where a load never sees it.

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
    refuse_link(path)
    try:
        kept = os.lstat(path).st_mode
    except FileNotFoundError:
        kept = None
    if kept is not None and not stat.S_ISREG(kept):
        raise EnsembleError(f"{path} exists and is not a regular file; refusing to replace it")
    _remove_dead_temporaries(tmp_for or path)
    tmp = _sibling(tmp_for or path, "tmp", _token())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666)
    try:
        if kept is not None:
            os.fchmod(fd, stat.S_IMODE(kept))  # private predictions stay private
        with open(fd, mode, closefd=True, **kwargs) as handle:
            _try_lock(handle.fileno())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _try_lock(fd: int, kind: str = "LOCK_EX") -> bool:
    """Take a lock without waiting; False if another process holds a conflicting one."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, so dead temporaries are left alone
        return False
    try:
        fcntl.flock(fd, getattr(fcntl, kind) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _dead(marker: Path) -> bool:
    """True when ``marker`` is a regular file whose writer is gone (its lock is free)."""
    try:
        fd = os.open(marker, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and _try_lock(fd)
    finally:
        os.close(fd)


def _remove_dead_temporaries(path: Path) -> None:
    for sibling, _ in _siblings(path, "tmp"):
        try:
            old = time.time() - os.lstat(sibling).st_mtime > STALE_TEMPORARY_SECONDS
            if old and _dead(sibling):
                sibling.unlink()
        except OSError:
            continue  # finished or removed meanwhile, or not ours to read


def _open_lock(path: Path, write: bool) -> int | None:
    """A descriptor of ``.NAME.lock`` beside ``path`` (never through a link).

    A save creates it; a load only opens one that exists (a load leaves no
    files behind) and gets None where there is none or it may not read it:
    the lock on the directory itself still keeps its read whole.
    """
    path = Path(os.path.abspath(path))  # `sign .`: the lock goes beside the model, not in it
    lock = path.parent / f".{path.name}.lock"
    flags = _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block
    try:
        fd = os.open(lock, flags | (os.O_RDWR | os.O_CREAT if write else os.O_RDONLY), 0o666)
    except OSError as exc:
        if not write:
            return None
        what = "a symbolic link" if exc.errno == errno.ELOOP else \
            f"not usable ({exc.strerror or exc})"
        raise EnsembleError(f"{lock} is {what}; remove it and save again") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        if not write:
            return None
        raise EnsembleError(f"{lock} is not a regular file (a FIFO, device or folder); "
                            f"remove it and save again")
    return fd


@contextlib.contextmanager
def locked(path: Path, wait_for_readers: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s lock file (released by the kernel if killed).

    With ``wait_for_readers``, also an exclusive lock on the directory ``path``
    itself, taken once every load reading it has finished (see :func:`_reading_lock`).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: saves are still atomic, just not serialised
        yield
        return
    fd = _open_lock(path, write=True)
    directory = None
    try:
        _flock(fd, fcntl.LOCK_EX, path)
        if wait_for_readers:
            directory = _open_directory(path)
            if directory is not None and not _flock(directory, fcntl.LOCK_EX, path):
                os.close(directory)
                directory = None
        yield
    finally:
        if directory is not None:
            os.close(directory)
        os.close(fd)  # closing releases the lock


def lock_timeout() -> float:
    """Seconds to wait for a lock: ``ENSEMBLE_LOCK_TIMEOUT``, else :data:`DEFAULT_LOCK_TIMEOUT`."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "")
    try:
        seconds = float(raw) if raw.strip() else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise EnsembleError(f"{LOCK_TIMEOUT_ENV}={raw[:32]!r} is not a number of seconds; "
                            f"set it to e.g. 60, or unset it")
    return seconds


def _flock(fd: int, operation: int, path: Path) -> bool:
    """flock within :func:`lock_timeout`; False where the file system cannot lock (some
    network mounts). A lock held longer, by anyone who can read ``path``, is one line."""
    import fcntl

    deadline, pause = time.monotonic() + lock_timeout(), 0.001
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise ModelDirectoryError(
                    f"{path} stayed locked by another process for {lock_timeout():g} s (a "
                    f"save locks it only to swap): find the process holding it "
                    f"(fuser -v {path}), or wait longer with {LOCK_TIMEOUT_ENV}=SECONDS"
                    ) from None
            time.sleep(pause)
            pause = min(2 * pause, 0.05)
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP):
                return False
            raise


def _open_directory(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC)
    except OSError:
        return None


@contextlib.contextmanager
def _reading_lock(path: Path) -> Iterator[int | None]:
    """A shared lock on the model directory ``path`` while it is read; yields the locked
    directory's descriptor, or None where it is not held.

    Two locks, so that a stream of loads can never starve a save: a load
    takes ``.NAME.lock`` (the gate) exclusively for an instant, takes a
    shared lock on the directory itself and lets the gate go; a save holds
    the gate while it waits for the directory's readers to finish and while
    it swaps, so loads arriving meanwhile queue at the gate. Flock alone lets
    readers overtake a waiting writer for ever.
    """
    recover_if_interrupted(path)  # before our lock: recovery takes the exclusive one
    try:
        import fcntl
    except ImportError:
        yield False
        return
    gate = _open_lock(path, write=False)
    directory = None
    try:
        if gate is not None:
            _flock(gate, fcntl.LOCK_EX, path)
        for _ in range(3):  # without the gate, a swap may come between open and lock
            directory = _open_directory(path)
            if directory is None:
                break
            if not _flock(directory, fcntl.LOCK_SH, path):
                os.close(directory)
                directory = None
                break
            with contextlib.suppress(OSError):
                now, held = os.stat(path), os.fstat(directory)
                if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                    break
            os.close(directory)
            directory = None
        if gate is not None:
            os.close(gate)
            gate = None
        key = str(path.absolute())
        _reading.add(key)
        try:
            yield directory
        finally:
            _reading.discard(key)
    finally:
        for fd in (gate, directory):
            if fd is not None:
                os.close(fd)


def read_consistently(path: Path, read: Callable[[Path], T]) -> T:
    """``read(directory)`` the model directory ``path`` while no save swaps it.

    Under the directory's shared lock a save cannot exchange it mid-read.
    ``read`` is handed a name of the locked directory itself where the system
    has one (``/proc/self/fd/N`` on Linux), so every file it opens, by any
    code, is one of that directory's: a parent folder renamed mid-read cannot
    swap in a twin's files after the signature and hashes were checked.
    Errors name ``path``. Where the lock cannot be taken (no file locks on
    this system), a read that fails is retried once: a save swaps directories
    in one rename, so the second read sees one whole model.
    """
    with _reading_lock(path) as directory:
        try:
            return _read_pinned(read, path, directory)
        except ModelDirectoryError:
            if directory is not None:
                raise
    time.sleep(0.05)
    return read(path)


def _read_pinned(read: Callable[[Path], T], path: Path, directory: int | None) -> T:
    pinned = Path(f"/proc/self/fd/{directory}") if directory is not None else path
    try:
        same = pinned != path and os.path.samestat(os.stat(pinned), os.fstat(directory))
    except OSError:  # no /proc here
        same = False
    if not same:
        return read(path)
    try:
        return read(pinned)
    except EnsembleError as exc:  # say the user's path, not the descriptor's
        exc.args = tuple(a.replace(str(pinned), str(path)) if isinstance(a, str) else a
                         for a in exc.args)
        raise


@contextlib.contextmanager
def atomic_directory(path: Path, ours: Callable[[Path], bool],
                     marker: str = "manifest.json") -> Iterator[Path]:
    """Yield an empty temporary sibling of ``path``; on success it replaces ``path`` whole.

    ``path`` may be replaced only if it is empty or ``ours(path)`` says it is
    one of our directories (:func:`check_replaceable`), checked again at the
    swap: a user's folder that merely holds a file named ``marker`` is never
    replaced. The new directory is written without
    the lock; the exclusive lock (``.NAME.lock`` beside it) is held to tidy
    dead saves' temporaries and to swap, so concurrent saves to one path are
    serialised at the swap and the last one wins whole. The old and new
    directories are exchanged in one atomic ``renameat2(RENAME_EXCHANGE)`` on Linux.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    check_replaceable(path, ours)  # before any work: a long fit never ends refused
    with locked(path):
        _remove_leftovers(path, marker)
    token = _token()
    flag = _sibling(path, "save", token)
    fd = os.open(flag, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    tmp = _sibling(path, "tmp", token)
    try:
        _try_lock(fd)  # held until the save ends: the next save can tell it is alive
        tmp.mkdir()
        try:
            yield tmp
            _fsync_tree(tmp)
            with locked(path, wait_for_readers=True):
                check_replaceable(path, ours)
                _swap_in(tmp, path, token)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # after an exchange: the old directory
    finally:
        if not tmp.exists():  # else the next save tidies it, by this marker
            os.unlink(flag)
        os.close(fd)


def check_replaceable(path: Path, ours: Callable[[Path], bool]) -> None:
    """Refuse, in one line, to replace ``path`` unless it is absent, empty or ``ours``."""
    refuse_link(path)
    if path.exists() and not (path.is_dir() and (not any(path.iterdir()) or ours(path))):
        raise ModelDirectoryError(f"{path} exists and is not an ensemble-engine model "
                                  f"directory; nothing was changed: choose another output "
                                  f"path")


def recover_if_interrupted(path: Path, marker: str = "manifest.json") -> None:
    """Put back a directory that a killed save left aside, before reading ``path``."""
    if str(path.absolute()) in _reading:  # our shared lock is held: no save is mid-swap
        return
    if not path.exists() and any(_dead(flag) for flag, _ in _siblings(path, "save")):
        with locked(path):
            _remove_leftovers(path, marker)


def _remove_leftovers(path: Path, marker: str) -> None:
    """Tidy what killed saves left, by their markers (safe: we hold the lock)."""
    _remove_dead_temporaries(path)  # files: a killed `ensemble sign`
    for flag, token in _siblings(path, "save"):
        if not _dead(flag):
            continue  # a save still at work
        old, tmp = _sibling(path, "old", token), _sibling(path, "tmp", token)
        if not path.exists() and not old.is_symlink() and (old / marker).is_file():
            os.rename(old, path)  # killed between two renames (non-Linux): put it back
        for leftover in (tmp, old):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
        if not tmp.exists() and not old.exists():
            flag.unlink()


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


def _swap_in(tmp: Path, path: Path, token: str) -> None:
    """Put ``tmp`` at ``path``; afterwards ``tmp`` holds the old directory, if any."""
    if path.exists() and _exchange(tmp, path):
        return
    old = None
    if path.exists():
        old = _sibling(path, "old", token)
        os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
