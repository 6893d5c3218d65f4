"""What a model directory holds, checked: sha256 hashes, no pickles, no links, no escapes."""

from __future__ import annotations

import hashlib
import io
import os
import pickletools
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

from engine.errors import ModelDirectoryError
from engine.io.files import MAX_JSON_BYTES, open_file

MAX_MODEL_BYTES = 4 << 30
MAX_ENTRIES = 4096  # files and folders in a model directory (a saved model holds tens)
MAX_DEPTH = 32  # folder levels
PICKLE_SCAN_BYTES = 4096
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle"}
MANIFEST = "manifest.json"  # a model directory's list of files and their sha256
# Written beside the manifest by engine.io.signing and not listed in it: it signs the manifest.
SIGNATURE = "signature.json"


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of the file at ``path``, read in 1 MiB blocks."""
    return _head_and_digest(path)[1]


def _head_and_digest(path: Path) -> tuple[bytes, str]:
    """The first 64 KiB of ``path`` and the sha256 of all of it, from one read."""
    digest = hashlib.sha256()
    with open_file(path) as handle:
        head = handle.read(1 << 16)
        digest.update(head)
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return head, digest.hexdigest()


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing absolute paths, ``..`` and symlinks."""
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts or not relative:
        raise ModelDirectoryError(f"manifest entry {relative!r} points outside the model "
                                  f"directory; refusing to load")
    full = root / candidate
    for part in [full, *full.parents]:
        if part == root:
            break
        if part.is_symlink():
            raise ModelDirectoryError(f"{relative!r} in the model directory is a symbolic link; "
                                      f"refusing to load")
    return full


def is_pickle(path: Path, head: bytes | None = None) -> bool:
    """Pickle by name, by the protocol 2-5 header, or (protocols 0-1) by its opcodes.

    ``head``, the file's first 64 KiB when the caller has read them already.
    """
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    if head is None:
        with open_file(path) as handle:
            head = handle.read(1 << 16)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    return _parses_as_pickle(head)


def _parses_as_pickle(head: bytes) -> bool:
    # Protocols 0 and 1 have no header: a file whose first PICKLE_SCAN_BYTES are all valid
    # pickle opcodes (the last one may be cut by the scan's end), or a whole pickle, is
    # one. JSON, text, HDF5 and zip files fail at once. The scan is bounded: pure-Python
    # opcode parsing costs about 0.4 ms per KiB.
    head = head[:PICKLE_SCAN_BYTES]
    if not head:
        return False
    stream, opcodes = io.BytesIO(head), 0
    with warnings.catch_warnings():  # decoding junk as string opcodes warns
        warnings.simplefilter("ignore")
        try:
            for opcode, _, _ in pickletools.genops(stream):
                if opcode.name == "STOP":
                    return True
                opcodes += 1
        except Exception:  # a parse error: not a pickle, unless it is the scan's cut
            return opcodes > 0 and stream.tell() >= len(head)
    return True


def hash_tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every regular file below ``root``, sorted."""
    return {p.relative_to(root).as_posix(): sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


def max_model_bytes() -> int:
    """The most bytes a model directory may hold (a sparse file would be hashed in full)."""
    return int(os.environ.get("ENSEMBLE_MAX_MODEL_BYTES", MAX_MODEL_BYTES))


def _entries(path: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry below ``path`` (relative name, lstat), sorted within each folder.

    Refuses a folder it cannot list (``Path.rglob`` skips one silently, and a
    loader could still open files inside it by name), more than
    :data:`MAX_ENTRIES` entries, and nesting past :data:`MAX_DEPTH`; iterative,
    so depth never becomes a RecursionError.
    """
    stack, count = [("", 0)], 0
    while stack:
        folder, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelDirectoryError(f"{folder!r} in the model directory is nested deeper "
                                      f"than {MAX_DEPTH} folders; refusing to load")
        try:
            with os.scandir(path / folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            raise ModelDirectoryError(f"cannot list {folder or '.'!r} in the model directory "
                                      f"({exc.strerror or exc}); every folder of a model must "
                                      f"be readable: chmod -R u+rX {path}") from None
        count += len(entries)
        if count > MAX_ENTRIES:
            raise ModelDirectoryError(f"{path} holds over {MAX_ENTRIES:,} files and folders "
                                      f"(a saved model holds tens); refusing to load")
        for entry in entries:
            relative = f"{folder}/{entry.name}" if folder else entry.name
            info = entry.stat(follow_symlinks=False)
            yield relative, info
            if stat.S_ISDIR(info.st_mode):
                stack.append((relative, depth + 1))


def verify_files(path: Path, files: dict[str, str], manifest: str = MANIFEST) -> None:
    """Check the sha256 of every file listed in the manifest, and that nothing else is there.

    Names found on disk are shown with ``repr``: a file name may hold a newline
    or a terminal escape sequence.
    """
    total, limit = 0, max_model_bytes()
    for relative, info in _entries(path):
        found, mode = path / relative, info.st_mode
        total += info.st_size if stat.S_ISREG(mode) else 0
        if total > limit:
            raise ModelDirectoryError(f"{path} holds over {limit:,} bytes; refusing "
                                      f"to read it (set ENSEMBLE_MAX_MODEL_BYTES to allow more)")
        if stat.S_ISLNK(mode):
            raise ModelDirectoryError(f"{relative!r} in the model directory is a symbolic link; "
                                      f"refusing to load")
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ModelDirectoryError(f"{relative!r} in the model directory is not a regular "
                                      f"file (a device, FIFO or socket); refusing to load")
        if stat.S_ISREG(mode) and found.suffix == ".json" and info.st_size > MAX_JSON_BYTES:
            raise ModelDirectoryError(f"{relative!r} is {info.st_size:,} bytes, over the "
                                      f"{MAX_JSON_BYTES:,}-byte limit for JSON; refusing to load")
        if stat.S_ISREG(mode) and relative not in (manifest, SIGNATURE) \
                and relative not in files:
            raise ModelDirectoryError(f"unexpected file {relative!r} in {path}: it is not in the "
                                      f"manifest; refusing to load a model that was added to")
    for relative, expected in files.items():
        full = inside(path, relative)
        if not full.is_file():
            raise ModelDirectoryError(f"model file {relative!r} is missing from {path}")
        head, digest = _head_and_digest(full)  # one read for both checks
        if is_pickle(full, head):
            raise ModelDirectoryError(f"model file {relative!r} is a pickle, which could run code "
                                      f"when loaded; ensemble-engine never writes or reads "
                                      f"pickles: refusing to load")
        if digest != expected:
            raise ModelDirectoryError(f"model file {relative!r} has changed since it was saved "
                                      f"(sha256 mismatch); restore it from its source or "
                                      f"train it again")
