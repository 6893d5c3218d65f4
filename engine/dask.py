"""Predict a Dask DataFrame partition by partition with a saved ensemble.

Each Dask worker loads the model directory once (verified, as :func:`engine.load`
does, with the signing policy chosen here) and predicts the partitions it is given,
so a cluster scores a table far bigger than one machine's memory. The model
directory must be readable at the same path on every worker (a shared or copied
filesystem).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from engine.io.atomic import read_consistently
from engine.io.model_dir import class_dtype, read_manifest
from engine.io.signing import check_signature, trust_policy
from engine.streaming import predict_frame


def _columns(classes: list[Any], dtype: Any) -> dict[str, Any]:
    return {"label": pd.Series(dtype=dtype), **{f"proba_{c}": pd.Series(dtype=float)
                                                for c in classes}}


def predict(model: str | Path, frame: Any, text: Any = None, fill_na: str | None = None,
            trusted: tuple[str, ...] = (), *, verify_with: Any = None,
            require_signature: bool | None = None) -> Any:
    """Predict every row of the Dask DataFrame ``frame`` with the model at ``model``.

    Parameters
    ----------
    model : str or Path
        A model directory written by ``Ensemble.save`` or ``ensemble fit``.
    frame : dask.dataframe.DataFrame
        Holds the text column(s) the model reads.
    text, fill_na : optional
        Override the columns and missing-text replacement saved with the model.
    trusted : tuple of str
        Extra types to trust in the model's skops files.
    verify_with, require_signature : optional
        The signature to require, as :func:`engine.load` takes them (default: the
        ``$ENSEMBLE_TRUSTED_KEYS`` / ``$ENSEMBLE_REQUIRE_SIGNATURE`` of this
        process). Checked here before any work is sent, and again by every worker
        with these keys: the workers' own environment is not consulted.

    Returns
    -------
    dask.dataframe.DataFrame
        ``label`` and ``proba_<class>`` columns, same index and partitions as ``frame``
        (lazy: call ``.compute()`` or ``.to_parquet(...)``).

    Examples
    --------
    >>> import dask.dataframe as dd                               # doctest: +SKIP
    >>> tweets = dd.read_csv("tweets-*.csv")                      # doctest: +SKIP
    >>> scored = engine.dask.predict("models/tweets", tweets)     # doctest: +SKIP
    >>> scored.to_parquet("scored/")                              # doctest: +SKIP
    """
    path = str(Path(model).resolve())
    policy = trust_policy(verify_with, require_signature)

    def checked(directory: Path) -> dict[str, Any]:  # fail here, not on a worker
        manifest = read_manifest(directory)
        check_signature(directory, manifest, policy)
        return manifest

    manifest = read_consistently(Path(path), checked)  # never mid-way through a save
    classes = manifest["classes"]["values"]
    dtype = class_dtype(manifest["classes"]["dtype"]) or object
    meta = pd.DataFrame(_columns(classes, dtype))
    settings = {"text": text, "fill_na": fill_na}
    return frame.map_partitions(predict_frame, path, settings, tuple(trusted), None, policy,
                                meta=meta)
