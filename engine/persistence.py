"""The model directory: manifest, integrity hashes, atomic save, verified load.

Layout::

    MODEL/
      manifest.json        what, who, versions, classes, configs, sha256 of every file
      members/<name>/      written by each member's save()
      combiner/            written by the combiner's save()
      oof.npz              out-of-fold probabilities and label codes (for recombine)
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import glob
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from engine import registry
from engine.errors import EnsembleError, ModelDirectoryError, PluginNotFoundError
from engine.sklearn_io import trusting
from engine.state_io import _to_json
from engine.version import __version__

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
OOF_FILE = "oof.npz"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe config for the manifest (objects shown by their repr)."""
    described = {}
    for key, value in params.items():
        try:
            described[key] = json.loads(json.dumps(_to_json(value)))
        except TypeError:
            described[key] = repr(value)
    return described


def _origin(kind: str, obj: Any) -> dict[str, str]:
    table = registry.get_registry().plugins() if kind == "plugin" else \
        registry.get_registry().combiners()
    entry = table.get(obj.name)
    if entry is None or entry.cls is not type(obj):
        raise ModelDirectoryError(
            f"{kind} {type(obj).__name__} (name '{obj.name}') is not registered, so the model "
            f"could not be loaded again; register it through the ensemble_engine entry point "
            f"or engine.register_plugin")
    return {"package": entry.package, "version": entry.version}


def _encode_classes(classes: np.ndarray) -> dict[str, Any]:
    values = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise ModelDirectoryError("class labels must be str, int, float or bool to be saved")
    return {"dtype": classes.dtype.kind, "values": values}


def _decode_classes(spec: dict[str, Any]) -> np.ndarray:
    kind = {"b": bool, "i": np.int64, "u": np.uint64, "f": float, "O": object}.get(spec["dtype"])
    return np.array(spec["values"], dtype=kind) if kind else np.array(spec["values"])


def save_ensemble(ensemble: Any, path: str | Path, data: dict[str, Any] | None = None) -> None:
    """Write ``ensemble`` to ``path`` atomically.

    ``data`` (column names and the like) is kept in the manifest so that the
    CLI can read new files the way the training file was read.

    Everything is written to a hidden sibling directory first, then exchanged
    with the old directory in one atomic ``renameat2(RENAME_EXCHANGE)`` on
    Linux, so a failed or killed save leaves the previous model intact. Saves
    to one path take an exclusive lock (``.NAME.lock`` beside it): two
    processes saving there at once are serialised, and the last one wins
    whole. An existing directory is replaced only if it is a model directory
    (or empty).
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(ensemble)
    path = Path(path)
    if path.exists() and not (path.is_dir() and ((path / MANIFEST).is_file()
                                                  or not any(path.iterdir()))):
        raise ModelDirectoryError(f"{path} exists and is not a model directory; "
                                  f"choose another output path")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        _remove_leftovers(path)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            manifest = _write_contents(ensemble, tmp)
            manifest["data"] = _describe(data or {})
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            _fsync_tree(tmp)
            _swap_in(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def _locked(path: Path):
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


def _remove_leftovers(path: Path) -> None:
    """Delete temporaries of saves that were killed (safe: we hold the lock)."""
    if not path.exists():
        _recover(path)
    for sibling in path.parent.glob(f".{glob.escape(path.name)}.*-*"):
        if sibling.is_dir() and sibling.name.rsplit("-", 1)[0] in (
                f".{path.name}.tmp", f".{path.name}.old"):
            shutil.rmtree(sibling, ignore_errors=True)


def _recover(path: Path) -> bool:
    """Put back a model that a save killed between two renames left aside (non-Linux)."""
    for old in sorted(path.parent.glob(f".{glob.escape(path.name)}.old-*")):
        if (old / MANIFEST).is_file() and not path.exists():
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


def _write_contents(ensemble: Any, root: Path) -> dict[str, Any]:
    members = []
    for name, member in ensemble.members_.items():
        directory = root / "members" / name
        directory.mkdir(parents=True)
        member.save(directory)
        members.append({"name": name, "plugin": member.name, **_origin("plugin", member),
                        "config": _describe(member.get_params(deep=False)),
                        "directory": f"members/{name}",
                        "bytes": sum(p.stat().st_size for p in directory.rglob("*")
                                     if p.is_file()),
                        "fit_seconds": ensemble.fit_seconds_[name]})
    combiner = ensemble.combiner_
    (root / "combiner").mkdir()
    combiner.save(root / "combiner")
    arrays = {"oof": ensemble.oof_, "y_codes": ensemble.y_codes_}
    if ensemble.oof_features_ is not None:
        arrays["features"] = ensemble.oof_features_
    np.savez(root / OOF_FILE, **arrays)
    files = {p.relative_to(root).as_posix(): sha256_file(p)
             for p in sorted(root.rglob("*")) if p.is_file()}
    params = ensemble.get_params(deep=False)
    return {
        "format_version": FORMAT_VERSION,
        "engine_version": __version__,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "classes": _encode_classes(ensemble.classes_),
        "ensemble": _describe({k: v for k, v in params.items()
                               if k not in ("members", "combiner")}),
        "members": members,
        "combiner": {"name": combiner.name, **_origin("combiner", combiner),
                     "config": _describe(combiner.get_params(deep=False)),
                     "directory": "combiner"},
        "training": ensemble.training_,
        "scores": ensemble.scores_,
        # Used by predict and submit; tuned on out-of-fold probabilities when threshold is a metric.
        "threshold": getattr(ensemble, "threshold_", None),
        "files": files,
    }


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as handle:
                os.fsync(handle.fileno())


def _swap_in(tmp: Path, path: Path) -> None:
    if path.exists() and _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old model
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


def _inside(root: Path, relative: str) -> Path:
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


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed manifest of the model at ``path``, with its format checked."""
    path = Path(path)
    if not path.exists() and any(path.parent.glob(f".{glob.escape(path.name)}.old-*")):
        with _locked(path):
            _recover(path)
    if not path.is_dir():
        raise ModelDirectoryError(f"no model directory at {path}; train one with "
                                  f"`ensemble fit CONFIG.toml`")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise ModelDirectoryError(f"{path} has no {MANIFEST}: not a model directory "
                                  f"(or an interrupted copy)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirectoryError(f"{path / MANIFEST} is not valid JSON ({exc})") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if not isinstance(version, int):
        raise ModelDirectoryError(f"{path / MANIFEST} has no format_version; not a model "
                                  f"directory written by ensemble-engine")
    if version > FORMAT_VERSION:
        raise ModelDirectoryError(
            f"model format {version} was written by ensemble-engine "
            f"{manifest.get('engine_version')}; this is {__version__}: upgrade ensemble-engine")
    return manifest


PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle"}


def _is_pickle(path: Path) -> bool:
    """Pickle by name, or by the protocol 2-5 header a pickle file starts with."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        head = handle.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def verify_files(path: Path, files: dict[str, str]) -> None:
    """Check the sha256 of every file listed in the manifest, and that nothing else is there."""
    for found in sorted(path.rglob("*")):
        relative = found.relative_to(path).as_posix()
        if found.is_symlink():
            raise ModelDirectoryError(f"'{relative}' in the model directory is a symbolic link; "
                                      f"refusing to load")
        if found.is_file() and relative != MANIFEST and relative not in files:
            raise ModelDirectoryError(f"unexpected file '{relative}' in {path}: it is not in the "
                                      f"manifest; refusing to load a model that was added to")
    for relative, expected in files.items():
        full = _inside(path, relative)
        if full.is_file() and _is_pickle(full):
            raise ModelDirectoryError(f"model file '{relative}' is a pickle, which could run code "
                                      f"when loaded; ensemble-engine never writes or reads "
                                      f"pickles: refusing to load")
        if not full.is_file():
            raise ModelDirectoryError(f"model file '{relative}' is missing from {path}")
        if sha256_file(full) != expected:
            raise ModelDirectoryError(f"model file '{relative}' has changed since it was saved "
                                      f"(sha256 mismatch): the model is corrupt or tampered")


def _load_part(kind: str, entry: dict[str, Any], path: Path) -> Any:
    reg = registry.get_registry()
    try:
        cls = reg.get_plugin(entry["plugin"]) if kind == "plugin" else \
            reg.get_combiner(entry["name"])
    except PluginNotFoundError:
        wanted = entry["plugin"] if kind == "plugin" else entry["name"]
        raise ModelDirectoryError(
            f"this model needs {kind} '{wanted}' from package '{entry.get('package')}' "
            f"{entry.get('version')}, which is not installed: pip install "
            f"{entry.get('package')}") from None
    installed = (reg.plugins() if kind == "plugin" else reg.combiners())[cls.name].version
    if installed != entry.get("version"):
        warnings.warn(f"{kind} '{cls.name}' was saved with version {entry.get('version')}, "
                      f"{installed} is installed; predictions may differ", stacklevel=3)
    return cls.load(_inside(path, entry["directory"]))


def load_ensemble(path: str | Path, trusted: Iterable[str] = ()) -> Any:
    """Load and verify a model directory written by :meth:`Ensemble.save`.

    Parameters
    ----------
    path : str or Path
        The model directory.
    trusted : list of str, default=()
        Extra fully-qualified type names the skops files may contain; only
        for models from a source you trust.

    Returns
    -------
    Ensemble
        Fitted, ready to predict.
    """
    from engine.ensemble import Ensemble

    path = Path(path)
    manifest = read_manifest(path)
    try:
        verify_files(path, manifest["files"])
        with trusting(trusted):
            members = {e["name"]: _load_part("plugin", e, path) for e in manifest["members"]}
            combiner = _load_part("combiner", manifest["combiner"], path)
        with np.load(_inside(path, OOF_FILE), allow_pickle=False) as npz:
            oof, codes = npz["oof"], npz["y_codes"]
            features = npz["features"] if "features" in npz.files else None
        settings = {k: (tuple(v) if isinstance(v, list) else v)
                    for k, v in manifest["ensemble"].items()}
        ensemble = Ensemble(members=dict(members), combiner=combiner, **settings)
        ensemble.members_ = members
        ensemble.fit_seconds_ = {e["name"]: e.get("fit_seconds", float("nan"))
                                 for e in manifest["members"]}
        ensemble.combiner_ = combiner
        ensemble.classes_ = _decode_classes(manifest["classes"])
        ensemble.oof_, ensemble.y_codes_, ensemble.oof_features_ = oof, codes, features
        ensemble.training_, ensemble.scores_ = manifest["training"], manifest["scores"]
        ensemble.threshold_ = manifest.get("threshold")
    except EnsembleError:  # already says what is wrong and what to do
        raise
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ModelDirectoryError(f"{path} is not a valid model directory "
                                  f"({type(exc).__name__}: {exc})") from exc
    ensemble.manifest_ = manifest
    return ensemble


# A writer locks its temporary from the moment it exists; one unlocked and this old
# belongs to a killed writer (a kill releases the lock) and can be removed.
STALE_TEMPORARY_SECONDS = 30


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **kwargs: Any):
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    The temporary is locked while it is written, so the next write to ``path``
    can tell a killed writer's temporary from a live one and removes it.
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
