"""A shared on-disk cache of text embeddings, keyed by encoder identity and text hash.

K-fold stacking, several members using one encoder, and a second ``fit`` then
compute each text's embedding once. Entries are written atomically (temporary
file + rename), so two processes can share the cache; each entry carries a
checksum, and a damaged entry is recomputed, never returned.

The cache lives in ``$ENSEMBLE_CACHE_DIR`` or ``~/.cache/ensemble-engine/features``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from engine.encoder import Encoder

DIGEST = 16  # bytes of blake2b checksum at the end of each entry
MEMORY_ENTRIES = 200_000  # about 400 MB of 512-d vectors kept in memory per process

# Prediction reads the cache but fills it only when asked: by the engine while it predicts
# held-out folds during fit (those texts are training data), or by the user
# (ENSEMBLE_CACHE_PREDICTIONS=1, the CLI's --cache-features).
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
    return _fill_on_predict.get() or os.environ.get("ENSEMBLE_CACHE_PREDICTIONS", "").lower() \
        in ("1", "true", "yes")


# Entries already read or written by this process, by cache folder then text key:
# fold after fold reads the same rows, and a disk read costs more than the lookup.
_memory: dict[Path, dict[str, np.ndarray]] = {}


def default_cache_dir() -> Path:
    """``$ENSEMBLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ensemble-engine/features``."""
    if os.environ.get("ENSEMBLE_CACHE_DIR"):
        return Path(os.environ["ENSEMBLE_CACHE_DIR"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ensemble-engine" / "features"


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


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

    def _folder(self, encoder: Encoder) -> Path:
        return self.directory / hashlib.sha256(encoder.identity.encode()).hexdigest()[:16]

    def _read(self, path: Path, dim: int) -> np.ndarray | None:
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        payload, digest = raw[:-DIGEST], raw[-DIGEST:]
        if len(payload) != 4 * dim or hashlib.blake2b(payload, digest_size=DIGEST).digest() \
                != digest:
            return None  # damaged or foreign: recompute
        return np.frombuffer(payload, dtype=np.float32)

    def _write(self, path: Path, vector: np.ndarray) -> None:
        payload = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_bytes(payload + hashlib.blake2b(payload, digest_size=DIGEST).digest())
        os.replace(tmp, path)

    def encode(self, encoder: Encoder, texts: Sequence[str], write: bool = True) -> np.ndarray:
        """Embeddings of ``texts``: cached ones read back, the rest computed (and stored)."""
        texts = list(texts)
        folder = self._folder(encoder)
        keys = [_key(t) for t in texts]
        out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        memory = _memory.setdefault(folder, {})
        for i, key in enumerate(keys):
            vector = memory.get(key)
            if vector is None:
                vector = self._read(folder / key[:2] / key, encoder.dim)
                if vector is not None:
                    self._remember(memory, key, vector)
            if vector is None:
                missing.setdefault(key, []).append(i)
            else:
                out[i] = vector
        if missing:
            rows = [v[0] for v in missing.values()]
            vectors = encoder.encode([texts[i] for i in rows])
            for (key, where), vector in zip(missing.items(), vectors, strict=True):
                out[where] = vector
                if write:
                    self._remember(memory, key, vector)
                    self._store(folder / key[:2] / key, vector)
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

    def _store(self, path: Path, vector: np.ndarray) -> None:
        try:
            self._write(path, vector)
        except OSError as exc:
            # An unwritable cache must not stop training: warn once, carry on uncached.
            if str(self.directory) not in FeatureCache._warned:
                FeatureCache._warned.add(str(self.directory))
                warnings.warn(f"feature cache {self.directory} is not writable ({exc.strerror}); "
                              f"continuing without caching. Set ENSEMBLE_CACHE_DIR to a "
                              f"writable folder.", stacklevel=3)

    def info(self) -> dict[str, int | str]:
        """Location, number of entries and bytes used."""
        files = [p for p in self.directory.rglob("*") if p.is_file()] \
            if self.directory.is_dir() else []
        return {"directory": str(self.directory), "entries": len(files),
                "bytes": sum(p.stat().st_size for p in files)}

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        count = int(self.info()["entries"])
        _memory.clear()
        if self.directory.is_dir():
            shutil.rmtree(self.directory)
        return count
