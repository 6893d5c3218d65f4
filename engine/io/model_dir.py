"""The model directory: its manifest, and the parts of a fitted ensemble written and read.

Layout::

    MODEL/
      manifest.json        what, who, versions, classes, configs, sha256 of every file
      members/<name>/      written by each member's save()
      combiner/            written by the combiner's save()
      oof.npz              out-of-fold probabilities and label codes (for recombine)

:func:`write_model` takes a :class:`ModelParts` and :func:`read_model` returns
one; :class:`engine.Ensemble` turns itself into parts and back, so this module
never needs to know the ensemble.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import registry
from engine.data import label_types
from engine.errors import EnsembleError, ModelDirectoryError, PluginNotFoundError
from engine.io.atomic import (
    atomic_directory,
    check_replaceable,
    read_consistently,
    recover_if_interrupted,
)
from engine.io.files import MAX_JSON_BYTES, load_npz, parse_json, read_bytes, read_json
from engine.io.integrity import MANIFEST, hash_tree, inside, verify_files
from engine.io.schema import MANIFEST_SCHEMA, validate
from engine.io.signing import TrustPolicy, check_signature, signed_files
from engine.io.state import describe
from engine.io.trust import mark_stored, trusting
from engine.text_safety import clean, package_hint
from engine.version import __version__

FORMAT_VERSION = 1
OOF_FILE = "oof.npz"
# What every manifest this format has written holds, beside an integer format_version.
OUR_MANIFEST_FIELDS = (("engine_version", str), ("members", list), ("combiner", dict),
                       ("files", dict))
# Class labels are saved as JSON values plus the dtype kind they had.
CLASS_DTYPES: dict[str, Any] = {"b": bool, "i": np.int64, "u": np.uint64, "f": float,
                                "O": object}


@dataclass
class ModelParts:
    """Everything a fitted ensemble is made of, as the model directory stores it.

    ``combiner``, ``scores`` and ``threshold`` are None for parts that are
    about to be given a new combiner (``Ensemble.recombine``).
    """

    members: dict[str, Any]
    fit_seconds: dict[str, float]
    classes: np.ndarray
    oof: np.ndarray
    y_codes: np.ndarray
    oof_features: np.ndarray | None
    training: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    combiner: Any = None
    scores: dict[str, Any] | None = None
    threshold: float | None = None
    oof_proba: np.ndarray | None = None  # the combiner's out-of-fold output (engine.oof)
    distilled_from: dict[str, Any] | None = None  # a student's teacher (engine.distill)
    kept: np.ndarray | None = None  # rows fitted on, when label issues were dropped
    manifest: dict[str, Any] | None = None
    manifest_sha256: str | None = None  # of the manifest bytes this load verified
    signer: str | None = None  # fingerprint of the key whose signature was verified


def class_dtype(kind: str) -> Any:
    """The numpy dtype for a saved dtype kind (``"i"``, ``"u"``, ...); None keeps numpy's guess."""
    return CLASS_DTYPES.get(kind)


def _encode_classes(classes: np.ndarray) -> dict[str, Any]:
    values = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise ModelDirectoryError("class labels must be str, int, float or bool to be saved")
    kind = "O" if classes.dtype.kind in "US" else classes.dtype.kind  # numpy str labels
    return {"dtype": kind, "values": values}


def decode_classes(spec: dict[str, Any]) -> np.ndarray:
    """The class labels saved by :func:`write_model`, in their original dtype."""
    return np.array(spec["values"], dtype=class_dtype(spec["dtype"]))


def _origin(kind: str, obj: Any) -> dict[str, str]:
    table = registry.get_registry().plugins() if kind == "plugin" else \
        registry.get_registry().combiners()
    entry = table.get(obj.name)
    if entry is None or entry.cls is not type(obj):
        raise ModelDirectoryError(
            f"{kind} {type(obj).__name__} (name '{obj.name}') is not registered, so the model "
            f"could not be loaded again; register it through the ensemble_engine entry point "
            f"or engine.register_plugin")
    if entry.registered is not None:  # engine.register_plugin: no package to install
        return {"registered": entry.registered, "version": entry.version}
    return {"package": entry.package, "version": entry.version}


def write_model(parts: ModelParts, path: str | Path, data: dict[str, Any] | None = None) -> None:
    """Write ``parts`` to the model directory ``path`` atomically.

    ``data`` (column names and the like) is kept in the manifest so that the
    CLI can read new files the way the training file was read.

    Everything is written to a hidden sibling directory first, then exchanged
    with the old directory in one rename (:func:`engine.io.atomic.atomic_directory`),
    so a failed or killed save leaves the previous model intact. An existing
    directory is replaced only if it is empty or one of ours
    (:func:`is_model_directory`).
    """
    with atomic_directory(Path(path), is_model_directory) as tmp:
        manifest = _write_contents(parts, tmp)
        manifest["data"] = describe(data or {})
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _write_contents(parts: ModelParts, root: Path) -> dict[str, Any]:
    members = []
    for name, member in parts.members.items():
        directory = root / "members" / name
        directory.mkdir(parents=True)
        member.save(directory)
        members.append({"name": name, "plugin": member.name, **_origin("plugin", member),
                        "config": describe(member.get_params(deep=False)),
                        "directory": f"members/{name}",
                        "bytes": tree_bytes(directory),
                        "fit_seconds": parts.fit_seconds[name]})
    combiner = parts.combiner
    (root / "combiner").mkdir()
    combiner.save(root / "combiner")
    arrays = {"oof": parts.oof, "y_codes": parts.y_codes}
    if parts.oof_features is not None:
        arrays["features"] = parts.oof_features
    if parts.oof_proba is not None:
        arrays["combined"] = parts.oof_proba
    if parts.kept is not None:
        arrays["kept"] = parts.kept
    np.savez(root / OOF_FILE, **arrays)
    return {
        "format_version": FORMAT_VERSION,
        "engine_version": __version__,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "classes": _encode_classes(parts.classes),
        "ensemble": describe(parts.settings),
        "members": members,
        "combiner": {"name": combiner.name, **_origin("combiner", combiner),
                     "config": describe(combiner.get_params(deep=False)),
                     "directory": "combiner"},
        "training": parts.training,
        "scores": parts.scores,
        # Used by predict and submit; tuned on out-of-fold probabilities when threshold is a metric.
        "threshold": parts.threshold,
        **({"distilled_from": parts.distilled_from} if parts.distilled_from else {}),
        "files": hash_tree(root),
    }


def is_model_directory(path: str | Path) -> bool:
    """Whether ``path`` holds one of our models: its manifest parses and names our format.

    A web app or a browser extension keeps a ``manifest.json`` too; only a
    directory this says is ours may be replaced by a save.
    """
    try:
        manifest = read_json(Path(path) / MANIFEST)
    except (EnsembleError, OSError):
        return False
    return isinstance(manifest, dict) and type(manifest.get("format_version")) is int \
        and all(isinstance(manifest.get(key), kind) for key, kind in OUR_MANIFEST_FIELDS)


def check_model_output(path: str | Path) -> None:
    """Refuse (one line) a model output path that is a folder but not an empty one or ours."""
    check_replaceable(Path(path), is_model_directory)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed manifest of the model at ``path``, with its format checked."""
    return _read_manifest(Path(path))[0]


def _read_manifest(path: Path) -> tuple[dict[str, Any], str]:
    """The checked manifest and the sha256 of the bytes it was parsed from."""
    recover_if_interrupted(path)
    if not path.is_dir():
        raise ModelDirectoryError(f"no model directory at {path}; train one with "
                                  f"`ensemble fit CONFIG.toml`")
    if not (path / MANIFEST).exists() and not (path / MANIFEST).is_symlink():
        raise ModelDirectoryError(f"{path} has no {MANIFEST}: not a model directory "
                                  f"(or an interrupted copy)")
    data = read_bytes(path / MANIFEST, MAX_JSON_BYTES)
    manifest = parse_json(data, MANIFEST)
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ModelDirectoryError(
            f"model format {version} was written by ensemble-engine "
            f"{str(manifest.get('engine_version'))[:64]}; this is {__version__}: upgrade "
            f"ensemble-engine")
    validate(manifest, MANIFEST_SCHEMA, str(path / MANIFEST))
    _check_classes(manifest["classes"]["values"], path / MANIFEST)
    return manifest, hashlib.sha256(data).hexdigest()


def _check_classes(values: list[Any], where: Path) -> None:
    """The rule fit applies: labels of one type, each once (one output column per class)."""
    if len(kinds := label_types(values)) > 1:
        raise ModelDirectoryError(f"{where}: classes mix types ({', '.join(kinds)}), which "
                                  f"would share output columns; refusing to load")
    if len(set(values)) != len(values):
        raise ModelDirectoryError(f"{where}: classes name a label more than once; "
                                  f"refusing to load")


def tree_bytes(path: str | Path) -> int:
    """Bytes of the regular files under ``path``: a model directory's size on disk."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def size_summary(path: str | Path, largest: int = 3) -> str:
    """The model directory's size on disk and its ``largest`` members' sizes, in one line.

    Examples
    --------
    >>> size_summary("models/disaster-tweets")  # doctest: +SKIP
    '31.4 MB (use 29.0 MB, char-lr 1.6 MB, word-lr 0.5 MB)'
    """
    manifest = read_manifest(path)
    total = tree_bytes(path)
    members = sorted(manifest["members"], key=lambda m: -m["bytes"])[:largest]
    parts = ", ".join(f"{clean(m['name'])} {m['bytes'] / 1e6:.1f} MB" for m in members)
    return f"{total / 1e6:.1f} MB ({parts})"


def _load_part(kind: str, entry: dict[str, Any], path: Path) -> Any:
    reg = registry.get_registry()
    try:
        cls = reg.get_plugin(entry["plugin"]) if kind == "plugin" else \
            reg.get_combiner(entry["name"])
    except PluginNotFoundError:
        wanted = entry["plugin"] if kind == "plugin" else entry["name"]
        if entry.get("registered"):  # checked by the schema; named, never imported
            cls_name = entry["registered"].rpartition(".")[2]
            raise ModelDirectoryError(
                f"this model needs {kind} '{wanted}', which was registered in the saving "
                f"process with engine.register_plugin (class {entry['registered']}); register "
                f"the same class first (engine.register_plugin({cls_name})), or install a "
                f"package that provides it through the ensemble_engine entry point") from None
        raise ModelDirectoryError(f"this model needs {kind} '{wanted}' from "
                                  f"{package_hint(entry.get('package'), entry.get('version'))}"
                                  ) from None
    installed = (reg.plugins() if kind == "plugin" else reg.combiners())[cls.name].version
    if installed != entry.get("version"):
        warnings.warn(f"{kind} '{cls.name}' was saved with version {entry.get('version')}, "
                      f"{installed} is installed; predictions may differ", stacklevel=4)
    return cls.load(inside(path, entry["directory"]))


@contextlib.contextmanager
def model_errors(path: Path) -> Iterator[None]:
    """Report what a damaged model directory makes fail as one ModelDirectoryError."""
    try:
        yield
    except EnsembleError:  # already says what is wrong and what to do
        raise
    except Exception as exc:  # whatever a hostile file makes fail: one line, exit 2
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelDirectoryError(f"{path} is not a valid model directory "
                                  f"({type(exc).__name__}: {first})") from exc


def read_model(path: str | Path, trusted: Iterable[str] = (),
               policy: TrustPolicy | None = None) -> ModelParts:
    """Read and verify the model directory ``path``: the parts a fitted ensemble is made of.

    ``path`` and ``trusted`` are those of :func:`engine.load`, which turns the
    returned :class:`ModelParts` (members, combiner, stored arrays, settings,
    manifest) into an ``Ensemble``; ``policy`` says which signing keys are
    trusted and whether a signature is required. A concurrent save never
    makes it fail: it reads under the directory's shared lock.
    """
    path = Path(path)
    return read_consistently(path, lambda pinned: _read_model(pinned, trusted,
                                                              policy or TrustPolicy({})))


def _read_model(path: Path, trusted: Iterable[str], policy: TrustPolicy) -> ModelParts:
    manifest, digest = _read_manifest(path)
    signer = check_signature(path, manifest, policy)  # the signature first, then the hashes
    with model_errors(path):
        with signed_files(signer):
            verify_files(path, manifest["files"], MANIFEST)
        with trusting(trusted):
            members = {e["name"]: _load_part("plugin", e, path) for e in manifest["members"]}
            combiner = _load_part("combiner", manifest["combiner"], path)
            settings = mark_stored(manifest["ensemble"])
        arrays = load_npz(inside(path, OOF_FILE), {"oof", "y_codes", "features", "combined",
                                                   "kept"})
        oof, codes, features = arrays["oof"], arrays["y_codes"], arrays.get("features")
        return ModelParts(
            members=members, combiner=combiner,
            fit_seconds={e["name"]: e.get("fit_seconds", float("nan"))
                         for e in manifest["members"]},
            classes=decode_classes(manifest["classes"]), oof=oof, y_codes=codes,
            oof_features=features, oof_proba=arrays.get("combined"), kept=arrays.get("kept"),
            training=manifest["training"], scores=manifest["scores"],
            threshold=manifest.get("threshold"), manifest=manifest,
            manifest_sha256=digest, signer=signer,
            settings={k: (tuple(v) if isinstance(v, list) else v)
                      for k, v in settings.items()})
