"""A shared on-disk cache of text embeddings, keyed by encoder identity and text hash.

K-fold stacking, several members using one encoder, and a second ``fit`` then
compute each text's embedding once. Entries are written atomically (temporary
file + rename), so processes of one user can share the cache.

The cache is private to its user: its folders are 0700 and its files 0600, and
a cache directory that someone else owns or that others may write to is
refused. Each entry carries a MAC keyed by a secret in the cache (see
:func:`cache_key`), so an entry this user's key did not write (planted,
copied from another cache, or damaged) is recomputed, never returned.
``clear`` deletes only the entries of a directory that holds this cache's
marker (``CACHEDIR.TAG``), never anything else.

The cache lives in ``$ENSEMBLE_CACHE_DIR`` or ``~/.cache/ensemble-engine/features``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import stat
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from engine.encoder import Encoder
from engine.errors import EnsembleError

DIGEST = 32  # bytes of keyed blake2b (a MAC) at the end of each entry
KEY_FILE = "key"
KEY_BYTES = 32
# The Cache Directory Tagging standard's marker (https://bford.info/cachedir/): backup tools
# skip the folder, and `clear` deletes only in a folder that has it.
MARKER = "CACHEDIR.TAG"
MARKER_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
               "# This is the ensemble-engine feature cache; `ensemble cache clear` empties it.\n")
# What the cache writes: <16 hex: encoder>/<2 hex>/<64 hex: text> (+ its temporaries).
_FOLDER, _SHARD = re.compile(r"[0-9a-f]{16}"), re.compile(r"[0-9a-f]{2}")
_ENTRY = re.compile(r"\.?[0-9a-f]{64}(?:\.[0-9a-f]{8})?")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)  # a planted FIFO never blocks
MEMORY_ENTRIES = 200_000  # about 400 MB of 512-d vectors kept in memory per process

# Prediction reads the cache but fills it only when asked: by the engine while it predicts
# held-out folds during fit (those texts are training data), or by the user
# (ENSEMBLE_CACHE_PREDICTIONS=1, the CLI's --cache-features).
CACHE_PREDICTIONS_ENV = "ENSEMBLE_CACHE_PREDICTIONS"
_fill_on_predict: contextvars.ContextVar[bool] = contextvars.ContextVar("fill_on_predict",
                                                                        default=False)


@contextlib.contextmanager
def filling_on_predict() -> Iterator[None]:
    """Within this block, predictions store the embeddings they compute."""
    token = _fill_on_predict.set(True)
    try:
        yield
    finally:
        _fill_on_predict.reset(token)


def fill_on_predict() -> bool:
    """Whether a prediction should store the embeddings it computes."""
    return _fill_on_predict.get() or os.environ.get(CACHE_PREDICTIONS_ENV, "").lower() \
        in ("1", "true", "yes")


# Entries already read or written by this process, by encoder folder then text: fold after
# fold reads the same rows, and a lookup by the text itself skips hashing it again.
_memory: dict[str, dict[str, np.ndarray]] = {}


def default_cache_dir() -> Path:
    """``$ENSEMBLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ensemble-engine/features``."""
    if os.environ.get("ENSEMBLE_CACHE_DIR"):
        return Path(os.environ["ENSEMBLE_CACHE_DIR"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ensemble-engine" / "features"


def _key(text: str, secret: bytes | None = None) -> str:
    """An entry's file name: a keyed hash of the text, so the names in a copy of the cache
    (a backup) do not tell which known texts were encoded."""
    data = text.encode("utf-8", "surrogatepass")
    if secret is None:
        return hashlib.sha256(data).hexdigest()
    return hashlib.blake2b(data, key=secret, digest_size=32, person=b"entry-name").hexdigest()


class CacheError(EnsembleError):
    """The cache directory cannot be used safely (someone else's, or others may write to it)."""


def check_private(directory: Path) -> None:
    """Refuse a cache directory someone else owns or others may write to (one line)."""
    info = directory.stat()
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise CacheError(f"feature cache {directory} belongs to another user (uid "
                         f"{info.st_uid}); set ENSEMBLE_CACHE_DIR to a folder of your own")
    if info.st_mode & 0o022:
        raise CacheError(f"feature cache {directory} is writable by other users (mode "
                         f"{stat.S_IMODE(info.st_mode):o}), who could plant embeddings; run "
                         f"chmod 700 {directory}, or set ENSEMBLE_CACHE_DIR to a private folder")


def _ours(marker: Path) -> bool:
    """Whether ``marker`` is a small regular file naming this cache (another tool's cache
    directory has a CACHEDIR.TAG too)."""
    try:
        fd = os.open(marker, _READ)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return False
        return MARKER_TEXT.splitlines()[1].encode() in handle.read(4096)


def cache_key(directory: Path) -> bytes:
    """The cache's secret key: 32 random bytes in ``KEY``, created once, mode 0600.

    Why a key: a checksum anyone can compute protects against damage, not
    against someone who writes an entry (a shared or copied cache, a folder
    others could write to once): a planted vector that matches its checksum
    would flip predictions silently. A MAC under a secret only this user can
    read means only entries written by this user's processes are ever used.
    """
    path = directory / KEY_FILE
    for _ in range(2):
        try:
            fd = os.open(path, _READ)
        except FileNotFoundError:
            tmp = directory / f".{KEY_FILE}.{uuid.uuid4().hex[:8]}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(os.urandom(KEY_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process made one first
                os.link(tmp, path)
            os.unlink(tmp)
            continue
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            key = handle.read(KEY_BYTES + 1) if stat.S_ISREG(info.st_mode) else b""
        if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) & 0o077 or \
                len(key) != KEY_BYTES or (hasattr(os, "geteuid") and info.st_uid != os.geteuid()):
            raise CacheError(f"feature cache key {path} is not a private 32-byte file of yours; "
                             f"delete it (the cache is recomputed) or set ENSEMBLE_CACHE_DIR to "
                             f"a private folder")
        return key
    raise CacheError(f"cannot create the feature cache key {path}")


class FeatureCache:
    """Embeddings on disk, one small checksummed file per (encoder, text).

    Parameters
    ----------
    directory : str, Path or None
        Where to keep entries; :func:`default_cache_dir` when None.

    Examples
    --------
    >>> import tempfile
    >>> class Lengths(Encoder):
    ...     name, dim, identity = "lengths", 1, "lengths:1"
    ...     def _encode(self, texts):
    ...         return [[len(t)] for t in texts]
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> cache.encode(Lengths(), ["a tweet"])  # computed once, then read back
    array([[7.]], dtype=float32)
    """

    _warned: set[str] = set()

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self._secret: bytes | None = None

    def _open(self) -> bytes | None:
        """Create (0700, with its marker) or check the directory; its key, None if unreadable."""
        if self._secret is None:
            fresh = not self.directory.is_dir()
            if fresh:
                try:
                    self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError:
                    return None  # unwritable: _store warns, reading finds nothing
            check_private(self.directory)
            marker = self.directory / MARKER
            # tag only a folder this cache made (or an empty one): a folder of the user's
            # files that ENSEMBLE_CACHE_DIR names by mistake must never become clear-able
            if not os.path.lexists(marker) and (fresh or not any(self.directory.iterdir())):
                with contextlib.suppress(OSError):
                    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
                    with os.fdopen(fd, "w") as handle:
                        handle.write(MARKER_TEXT)
            try:
                self._secret = cache_key(self.directory)
            except OSError:
                return None
        return self._secret

    def _folder(self, encoder: Encoder) -> Path:
        return self.directory / hashlib.sha256(encoder.identity.encode()).hexdigest()[:16]

    # Entries are named by strings, not Paths: a warm fit reads thousands, and pathlib's
    # joins cost more than the reads themselves.
    def _mac(self, path: str | Path, payload: bytes) -> bytes:
        # The entry's place (encoder folder and text hash) is in the MAC: a valid entry
        # moved to another text's name does not verify either.
        shard, name = os.path.split(os.fspath(path))
        place = f"{os.path.basename(os.path.dirname(shard))}/{name}".encode()
        return hashlib.blake2b(place + b"\0" + payload, key=self._secret or b"",
                               digest_size=DIGEST).digest()

    def _read(self, path: str | Path, dim: int) -> np.ndarray | None:
        if self._open() is None:
            return None
        try:
            fd = os.open(path, _READ)
        except OSError:
            return None
        try:
            raw = os.read(fd, 4 * dim + DIGEST + 1)  # a FIFO reads as empty: recomputed
        except OSError:
            return None
        finally:
            os.close(fd)
        payload, digest = raw[:-DIGEST], raw[-DIGEST:]
        if len(payload) != 4 * dim or self._mac(path, payload) != digest:
            return None  # damaged, foreign or planted: recompute
        return np.frombuffer(payload, dtype=np.float32)

    def _write(self, path: str | Path, vector: np.ndarray) -> None:
        if self._open() is None:
            raise PermissionError(13, "cannot create it")
        payload = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        path = Path(path)
        for folder in (path.parent.parent, path.parent):
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o700)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload + self._mac(path, payload))
        os.replace(tmp, path)

    def encode(self, encoder: Encoder, texts: Sequence[str], write: bool = True) -> np.ndarray:
        """Embeddings of ``texts``: cached ones read back, the rest computed (and stored)."""
        texts = list(texts)
        folder = str(self._folder(encoder))
        out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
        memory = _memory.setdefault(folder, {})
        missing: dict[str, list[int]] = {}  # by text: a repeated text is computed once
        for i, text in enumerate(texts):
            vector = memory.get(text)
            if vector is None:
                missing.setdefault(text, []).append(i)
            else:
                out[i] = vector
        if not missing:
            return out
        secret = self._open()
        places = {text: os.path.join(folder, key[:2], key)
                  for text, key in ((t, _key(t, secret)) for t in missing)}
        for text in list(missing):
            vector = self._read(places[text], encoder.dim)
            if vector is not None:
                self._remember(memory, text, vector)
                out[missing.pop(text)] = vector
        if missing:
            vectors = encoder.encode(list(missing))
            for (text, where), vector in zip(missing.items(), vectors, strict=True):
                out[where] = vector
                if write:
                    self._remember(memory, text, vector)
                    self._store(places[text], vector)
        return out

    @staticmethod
    def _remember(memory: dict[str, np.ndarray], key: str, vector: np.ndarray) -> None:
        if len(memory) >= MEMORY_ENTRIES:
            memory.clear()
        memory[key] = vector

    @staticmethod
    def forget() -> None:
        """Drop this process's in-memory copies (the disk cache stays)."""
        _memory.clear()

    def _store(self, path: str | Path, vector: np.ndarray) -> None:
        try:
            self._write(path, vector)
        except OSError as exc:
            # An unwritable cache must not stop training: warn once, carry on uncached.
            if str(self.directory) not in FeatureCache._warned:
                FeatureCache._warned.add(str(self.directory))
                warnings.warn(f"feature cache {self.directory} is not writable ({exc.strerror}); "
                              f"continuing without caching. Set ENSEMBLE_CACHE_DIR to a "
                              f"writable folder.", stacklevel=3)

    def _entries(self) -> Iterator[Path]:
        """The files the cache wrote (by their names' pattern), never through a link."""
        if not self.directory.is_dir():
            return
        for folder in self.directory.iterdir():
            if not (_FOLDER.fullmatch(folder.name) and folder.is_dir()
                    and not folder.is_symlink()):
                continue
            for shard in folder.iterdir():
                if _SHARD.fullmatch(shard.name) and shard.is_dir() and not shard.is_symlink():
                    yield from (p for p in shard.iterdir() if _ENTRY.fullmatch(p.name)
                                and p.is_file() and not p.is_symlink())

    def info(self) -> dict[str, int | str]:
        """Location, number of entries and bytes used."""
        files = [p for p in self._entries() if not p.name.startswith(".")]  # no temporaries
        return {"directory": str(self.directory), "entries": len(files),
                "bytes": sum(p.stat().st_size for p in files)}

    def clear(self) -> int:
        """Delete the cache's entries (only in a folder with its marker); how many there were.

        Files and folders the cache did not write stay, and so do the
        directory, its marker and its key.
        """
        _memory.clear()
        if not self.directory.is_dir():
            return 0
        if not _ours(self.directory / MARKER) or self.directory.is_symlink():
            if not any(self.directory.iterdir()):
                return 0
            raise CacheError(f"{self.directory} has no {MARKER} of ensemble-engine's, so it "
                             f"did not create it as its feature cache; deleting nothing in it "
                             f"(check ENSEMBLE_CACHE_DIR)")
        check_private(self.directory)
        count = 0
        for entry in list(self._entries()):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                count += not entry.name.startswith(".")
        for folder in self.directory.iterdir():  # emptied folders the cache made
            if _FOLDER.fullmatch(folder.name) and folder.is_dir() and not folder.is_symlink():
                for shard in folder.iterdir():
                    if _SHARD.fullmatch(shard.name):
                        with contextlib.suppress(OSError):
                            shard.rmdir()  # only if empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
        return count
