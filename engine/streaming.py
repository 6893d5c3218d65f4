"""Predicting a CSV file chunk by chunk, so memory does not grow with the file.

Chunks are predicted in this process, or with ``n_jobs`` in joblib worker
processes that each load the model directory once; results come back in file
order and are written as they arrive.

pandas, joblib and the ensemble are imported where they are used: the CLI
reads :data:`DEFAULT_CHUNK_SIZE` from here to build its ``--help``.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.io.outputs import csv_safe, output_file

if TYPE_CHECKING:
    import pandas as pd

    from engine.io.signing import TrustPolicy

DEFAULT_CHUNK_SIZE = 50_000


_LOADS: collections.OrderedDict[tuple[Any, ...], tuple[str, Any]] = collections.OrderedDict()
_LOADS_KEPT = 4
_LOADS_LOCK = threading.Lock()  # Dask's threaded scheduler predicts partitions in threads


def _saved_version(path: str) -> str:
    """A hash of the manifest and signature at ``path``: what makes a cached load current.

    The manifest holds every file's hash and the save's time, so this changes with any
    re-save; signing changes only ``signature.json``, so it is read too (the signer a
    load reports). A file that cannot be read gives "" and the load says what is wrong.
    """
    from engine.errors import EnsembleError
    from engine.io.files import MAX_JSON_BYTES, read_bytes
    from engine.io.integrity import MANIFEST, SIGNATURE

    digest = hashlib.sha256()
    try:
        digest.update(read_bytes(Path(path) / MANIFEST, MAX_JSON_BYTES))
        signature = Path(path) / SIGNATURE
        if os.path.lexists(signature):
            digest.update(b"\0" + read_bytes(signature, MAX_JSON_BYTES))
    except (OSError, EnsembleError):
        return ""
    return digest.hexdigest()


def loaded(path: str, trusted: tuple[str, ...] = (), policy: TrustPolicy | None = None) -> Any:
    """The model at ``path``, loaded (and verified) once per process, per save and per policy.

    ``policy`` (default: the environment of the process this runs in, which the CLI's
    signature flags set) says which signatures to require. A load is kept only if the
    directory was not replaced while it ran. Each caller gets its own shallow copy, so
    the settings one sets (``set_params(text=...)``) never reach another; the fitted
    members are shared.
    """
    from engine.ensemble import load_ensemble
    from engine.io.signing import trust_policy

    policy = trust_policy() if policy is None else policy
    key, version = (path, trusted, policy), _saved_version(path)
    with _LOADS_LOCK:
        kept = _LOADS.get(key)
        if kept is not None and version and kept[0] == version:
            _LOADS.move_to_end(key)
            return copy.copy(kept[1])
    model = load_ensemble(path, trusted, verify_with=policy)
    if version and _saved_version(path) == version:
        with _LOADS_LOCK:
            _LOADS[key] = (version, model)
            _LOADS.move_to_end(key)
            while len(_LOADS) > _LOADS_KEPT:
                _LOADS.popitem(last=False)
    return copy.copy(model)


def predict_frame(frame: pd.DataFrame, path: str, settings: dict[str, Any] | None = None,
                  trusted: tuple[str, ...] = (), threads: int | None = None,
                  policy: TrustPolicy | None = None) -> pd.DataFrame:
    """``label`` and ``proba_<class>`` columns for the rows of ``frame``, same index.

    ``settings`` (``text``, ``fill_na``) override what the model was saved with.
    ``policy`` is the signing policy the caller chose. Anything that sends this to
    another process must pass it: the default reads the environment of the process
    it runs in, and a reused worker's may hold an earlier call's settings.
    """
    from engine.parallel import limit_threads

    limit_threads(threads)
    model = loaded(path, trusted, policy)
    if settings:
        model.set_params(**{k: v for k, v in settings.items() if v is not None})
    if len(frame):
        labels, proba = model.predict_with_proba(frame)
    else:  # an empty partition (Dask makes them) still has the columns
        labels, proba = model.classes_[:0], np.zeros((0, len(model.classes_)))
    return prediction_frame(labels, proba, model.classes_, frame.index)


def prediction_frame(labels: np.ndarray, proba: np.ndarray, classes: np.ndarray,
                     index: pd.Index | None = None) -> pd.DataFrame:
    """The columns ``ensemble predict`` writes: ``label``, then ``proba_<class>`` per class."""
    import pandas as pd

    out = pd.DataFrame({"label": labels}, index=index)
    for k, cls in enumerate(classes):
        out[f"proba_{cls}"] = proba[:, k]
    return out


def predict_chunks(model_dir: str | Path, data: str | Path, settings: dict[str, Any],
                   chunk_size: int = DEFAULT_CHUNK_SIZE, n_jobs: int | None = None,
                   trusted: tuple[str, ...] = ()) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Yield ``(rows, predictions)`` for each chunk of the CSV ``data``, in file order."""
    from joblib import Parallel, delayed

    from engine.data import read_chunks
    from engine.io.signing import trust_policy
    from engine.parallel import worker_threads

    path = str(Path(model_dir).resolve())
    policy = trust_policy()  # read here, once: reused workers keep the environment they began with
    chunks = read_chunks(data, chunk_size)
    if n_jobs in (None, 1):
        for chunk in chunks:
            yield chunk, predict_frame(chunk, path, settings, trusted, policy=policy)
        return
    # joblib reads ahead only a few chunks (pre_dispatch), so memory stays bounded.
    threads = worker_threads(n_jobs)
    pending: list[pd.DataFrame] = []

    def tasks():
        for chunk in chunks:
            pending.append(chunk)
            yield delayed(predict_frame)(chunk, path, settings, trusted, threads, policy)

    for predictions in Parallel(n_jobs=n_jobs, return_as="generator")(tasks()):
        yield pending.pop(0), predictions


def write_predictions(model_dir: str | Path, data: str | Path, output: str | Path,
                      settings: dict[str, Any], id_column: str | None = None,
                      chunk_size: int = DEFAULT_CHUNK_SIZE, n_jobs: int | None = None,
                      trusted: tuple[str, ...] = ()) -> int:
    """Write id, label and one ``proba_<class>`` column per class for every row of ``data``.

    Chunks are appended to a temporary file that replaces ``output`` only when
    every chunk succeeded (``-`` and FIFOs are streamed into:
    :func:`engine.io.outputs.output_file`); text cells a spreadsheet would run
    as formulas get a leading apostrophe. Returns the number of rows written.
    """
    rows = 0
    with output_file(output, newline="") as handle:
        for chunk, out in predict_chunks(model_dir, data, settings, chunk_size, n_jobs, trusted):
            if id_column and id_column in chunk.columns:
                out.insert(0, id_column, chunk[id_column].to_numpy())
            csv_safe(out).to_csv(handle, index=False, header=rows == 0)
            rows += len(out)
    return rows
