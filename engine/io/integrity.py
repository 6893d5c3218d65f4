"""What a model directory holds, checked: sha256 hashes, no pickles, no links, no escapes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.errors import ModelDirectoryError

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle"}
# Written beside the manifest by engine.io.signing and not listed in it: it signs the manifest.
SIGNATURE = "signature.json"


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing absolute paths, ``..`` and symlinks."""
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts or not relative:
        raise ModelDirectoryError(f"manifest entry '{relative}' points outside the model "
                                  f"directory; refusing to load")
    full = root / candidate
    for part in [full, *full.parents]:
        if part == root:
            break
        if part.is_symlink():
            raise ModelDirectoryError(f"'{relative}' in the model directory is a symbolic link; "
                                      f"refusing to load")
    return full


def is_pickle(path: Path) -> bool:
    """Pickle by name, or by the protocol 2-5 header a pickle file starts with."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        head = handle.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def hash_tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every regular file below ``root``, sorted."""
    return {p.relative_to(root).as_posix(): sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


def verify_files(path: Path, files: dict[str, str], manifest: str = "manifest.json") -> None:
    """Check the sha256 of every file listed in the manifest, and that nothing else is there."""
    for found in sorted(path.rglob("*")):
        relative = found.relative_to(path).as_posix()
        if found.is_symlink():
            raise ModelDirectoryError(f"'{relative}' in the model directory is a symbolic link; "
                                      f"refusing to load")
        if found.is_file() and relative not in (manifest, SIGNATURE) and relative not in files:
            raise ModelDirectoryError(f"unexpected file '{relative}' in {path}: it is not in the "
                                      f"manifest; refusing to load a model that was added to")
    for relative, expected in files.items():
        full = inside(path, relative)
        if full.is_file() and is_pickle(full):
            raise ModelDirectoryError(f"model file '{relative}' is a pickle, which could run code "
                                      f"when loaded; ensemble-engine never writes or reads "
                                      f"pickles: refusing to load")
        if not full.is_file():
            raise ModelDirectoryError(f"model file '{relative}' is missing from {path}")
        if sha256_file(full) != expected:
            raise ModelDirectoryError(f"model file '{relative}' has changed since it was saved "
                                      f"(sha256 mismatch); restore it from its source or "
                                      f"train it again")
