"""Reading a file from a model directory without trusting it: bounded, regular, no links.

Every file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with
``fstat`` to be a regular file before a byte is read, so a symlink to
``/dev/zero`` or a FIFO named like a model file fails at once instead of
flooding memory or hanging. Archives (``.npz``, skops, ``.keras``) have their
zip headers checked against size and compression-ratio limits, and every
``.npy`` array inside against the bytes actually stored, before anything is
extracted or allocated.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from engine.errors import EnsembleError, ModelDirectoryError

# Bounds a model directory must stay within; the README's security section states them.
MAX_JSON_BYTES = 4 << 20
MAX_JSON_DEPTH = 64
MAX_JSON_ITEMS = 1 << 16  # per string, list or object
MAX_ARCHIVE_BYTES = 8 << 30
# An archive may expand this much overall; np.savez, skops and Keras store, not deflate.
MAX_COMPRESSION_RATIO = 50
SMALL_ARCHIVE_BYTES = 64 << 20  # below this, any ratio


def open_regular(path: str | Path) -> int:
    """A read-only descriptor for ``path``, refusing links and anything but a regular file.

    ``O_NONBLOCK`` keeps ``open`` from waiting for a FIFO's writer; it has no
    effect on a regular file.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if path.is_symlink():
            raise ModelDirectoryError(f"'{path.name}' in the model directory is a symbolic "
                                      f"link; refusing to load") from None
        raise ModelDirectoryError(f"cannot read '{path.name}' in the model directory "
                                  f"({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelDirectoryError(f"'{path.name}' in the model directory is not a regular file "
                                  f"(a device, FIFO or socket); refusing to load")
    return fd


def open_file(path: str | Path) -> IO[bytes]:
    """``path`` opened for binary reading through :func:`open_regular`."""
    return os.fdopen(open_regular(path), "rb")


def _within(handle: IO[bytes], path: str | Path, limit: int) -> int:
    size = os.fstat(handle.fileno()).st_size
    if size > limit:
        raise ModelDirectoryError(f"'{Path(path).name}' is {size:,} bytes, over the "
                                  f"{limit:,}-byte limit for such a file; refusing to load")
    return size


def check_file(path: str | Path, limit: int) -> int:
    """The size of the regular file ``path``, refused if over ``limit`` bytes (nothing read)."""
    with open_file(path) as handle:
        return _within(handle, path, limit)


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The content of the regular file ``path``, refused if larger than ``limit`` bytes."""
    with open_file(path) as handle:
        _within(handle, path, limit)
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew while read
        raise ModelDirectoryError(f"'{Path(path).name}' grew past {limit:,} bytes while read")
    return data


def check_bounds(value: Any, name: str,
                 error: type[EnsembleError] = ModelDirectoryError) -> None:
    """Refuse parsed JSON nested past :data:`MAX_JSON_DEPTH`, or with a string, list or
    object past :data:`MAX_JSON_ITEMS` (iterative and cheap: schemas check the meaning).

    ``error`` is raised: a config file (TOML, JSON) is bounded the same way."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_JSON_ITEMS:
                raise error(f"{name!r} holds a string of {len(item):,} characters (at most "
                            f"{MAX_JSON_ITEMS:,})")
            continue
        if not isinstance(item, (dict, list)):
            continue
        if level > MAX_JSON_DEPTH:
            raise error(f"{name!r} nests deeper than {MAX_JSON_DEPTH} levels; refusing to load")
        if len(item) > MAX_JSON_ITEMS:
            raise error(f"{name!r} holds a list or object of {len(item):,} items (at most "
                        f"{MAX_JSON_ITEMS:,}); refusing to load")
        if isinstance(item, dict):
            stack.extend((k, level + 1) for k in item)
        stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict)
                                              else item))


def read_json(path: str | Path, limit: int = MAX_JSON_BYTES) -> Any:
    """Parse the JSON file ``path`` within size, nesting and number bounds.

    Integers too long for Python to parse and nesting deeper than
    :data:`MAX_JSON_DEPTH` are refused; what the values mean is checked
    against a schema by :mod:`engine.io.schema`.
    """
    return parse_json(read_bytes(path, limit), Path(path).name)


def parse_json(data: bytes | str, name: str,
               error: type[EnsembleError] = ModelDirectoryError) -> Any:
    """Parse JSON ``data`` (at most the caller's byte limit) within :func:`check_bounds`.

    Every JSON the engine reads goes through here (a manifest, a state file, the
    CLI's ``--params``); ``error`` is what a refusal raises.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise error(f"'{name}' nests deeper than {MAX_JSON_DEPTH} levels; "
                    f"refusing to load") from None
    except (ValueError, UnicodeDecodeError) as exc:  # also an integer past the digit limit
        reason = str(exc).split("; use sys.")[0]
        raise error(f"'{name}' is not valid JSON ({reason})") from None
    check_bounds(value, name, error)
    return value


def check_archive(path: str | Path, limit: int = MAX_ARCHIVE_BYTES) -> None:
    """Refuse a zip whose headers promise more than ``limit`` bytes or a bomb's ratio.

    The whole archive may expand to :data:`SMALL_ARCHIVE_BYTES`, or to
    :data:`MAX_COMPRESSION_RATIO` times its compressed size. Every ``.npy``
    member's header must also describe exactly the bytes stored, so a 200-byte
    file cannot claim a 29 TiB array.
    """
    name = Path(path).name
    with open_file(path) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ModelDirectoryError(f"'{name}' is not a readable archive ({exc})") from None
        with archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            packed = sum(info.compress_size for info in infos)
            if total > min(limit, max(SMALL_ARCHIVE_BYTES, MAX_COMPRESSION_RATIO * packed)):
                raise ModelDirectoryError(
                    f"'{name}' would expand from {packed:,} to {total:,} bytes; refusing a "
                    f"decompression bomb")
            if len({info.filename for info in infos}) != len(infos):
                raise ModelDirectoryError(f"'{name}' holds two members of one name; refusing "
                                          f"an ambiguous archive")
            for info in infos:
                if info.filename.endswith(".npy"):
                    _check_npy_member(archive, info, name)


def _check_npy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            header = {1: np.lib.format.read_array_header_1_0,
                      2: np.lib.format.read_array_header_2_0}.get(version[0])
            if header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = header(member)
            offset = member.tell()
    except (ValueError, OSError, SyntaxError, zipfile.BadZipFile) as exc:
        raise ModelDirectoryError(f"'{name}' holds a damaged array {info.filename} "
                                  f"({exc})") from None
    if dtype.hasobject:
        raise ModelDirectoryError(f"'{name}' holds an object array {info.filename}, which "
                                  f"could run code when loaded; refusing to load")
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if claimed != info.file_size - offset:
        raise ModelDirectoryError(f"array {info.filename} in '{name}' claims shape {shape} "
                                  f"({claimed:,} bytes) but {info.file_size - offset:,} bytes "
                                  f"are stored; refusing to load")


def load_npz(path: str | Path, keys: set[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, checked by :func:`check_archive` first, no pickle.

    With ``keys``, an array not among them is refused rather than loaded.
    """
    check_archive(path)
    with np.load(path, allow_pickle=False) as npz:
        unexpected = sorted(set(npz.files) - keys) if keys is not None else []
        if unexpected:
            raise ModelDirectoryError(f"'{Path(path).name}' holds unexpected arrays "
                                      f"{unexpected[:5]}; refusing to load")
        return {key: npz[key] for key in npz.files}

