"""Keras files from a model directory, checked before Keras reads them.

Keras builds a model from its config before it reads a weight, so a 13 KB
``.keras`` file whose config asks for an Embedding of 10^9 rows allocates
gigabytes first. Here every size in a layer config must be backed by a
weight array actually stored (or be small), every stored array must hold the
bytes its shape claims, and the archive passes :func:`check_archive`.
``safe_mode=True`` (no Lambda layers, no arbitrary classes) stays with Keras.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from engine.errors import ModelDirectoryError
from engine.io.files import MAX_JSON_BYTES, MAX_JSON_DEPTH, check_archive, depth, open_file

# Config keys that size an allocation (layers, KerasHub backbones and tokenizers).
DIMENSION_KEYS = frozenset({
    "input_dim", "output_dim", "units", "filters", "max_tokens", "output_sequence_length",
    "vocabulary_size", "hidden_dim", "intermediate_dim", "max_sequence_length", "num_heads",
    "key_dim", "value_dim", "embedding_dim", "sequence_length", "num_segments",
    "num_query_heads", "num_key_value_heads", "head_dim", "embedding_size", "num_groups",
    "num_inner_repetitions", "kernel_size", "pool_size", "num_tokens", "max_length",
})
# Sizes below this need no weights behind them (sequence lengths, heads, kernel sizes).
SMALL_DIMENSION = 1 << 16
MAX_LAYERS = 256


def stored_shapes(handle: str | Path | IO[bytes], name: str) -> list[tuple[int, ...]]:
    """The shapes of the arrays in a Keras ``.weights.h5`` file, each backed by its bytes."""
    import h5py

    shapes: list[tuple[int, ...]] = []

    def visit(key: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            claimed = int(np.prod(item.shape, dtype=object)) * item.dtype.itemsize
            if item.compression is None and item.id.get_storage_size() < claimed:
                raise ModelDirectoryError(f"weight {key} in '{name}' claims shape {item.shape} "
                                          f"but stores fewer bytes; refusing to load")
            shapes.append(tuple(int(n) for n in item.shape))

    try:
        with h5py.File(handle, "r") as weights:
            weights.visititems(visit)
    except ModelDirectoryError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, ValueError ... on damage
        raise ModelDirectoryError(f"'{name}' is not a readable weights file ({exc})") from None
    return shapes


def check_sizes(config: Any, shapes: list[tuple[int, ...]], name: str) -> None:
    """Refuse a config whose sizes are not backed by ``shapes`` (see the module docstring)."""
    bound = max([SMALL_DIMENSION, *(n for shape in shapes for n in shape)])
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                sizes = value if isinstance(value, list) else [value]
                too_big = [n for n in sizes if isinstance(n, int) and not isinstance(n, bool)
                           and (n > bound or n < -1)]
                if key in DIMENSION_KEYS and too_big:
                    raise ModelDirectoryError(
                        f"'{name}' asks for {key}={too_big[0]:,}, more than any weight stored "
                        f"({bound:,}); refusing to allocate for it")
                if key == "num_layers" and isinstance(value, int) and \
                        not 0 <= value <= min(MAX_LAYERS, len(shapes)):
                    raise ModelDirectoryError(f"'{name}' asks for {value:,} layers with "
                                              f"{len(shapes)} weight arrays stored; refusing")
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def check_keras_archive(path: str | Path) -> None:
    """Check a ``.keras`` file: zip bounds, a bounded config, sizes backed by its weights."""
    path = Path(path)
    check_archive(path)
    with zipfile.ZipFile(open_file(path)) as archive:
        try:
            info = archive.getinfo("config.json")
        except KeyError:
            raise ModelDirectoryError(f"'{path.name}' has no config.json: not a Keras model "
                                      f"file") from None
        if info.file_size > MAX_JSON_BYTES:
            raise ModelDirectoryError(f"config.json in '{path.name}' is {info.file_size:,} "
                                      f"bytes; refusing to load")
        try:
            config = json.loads(archive.read(info))
        except (ValueError, RecursionError) as exc:
            raise ModelDirectoryError(f"config.json in '{path.name}' is not valid JSON "
                                      f"({type(exc).__name__})") from None
        if depth(config) > MAX_JSON_DEPTH:
            raise ModelDirectoryError(f"config.json in '{path.name}' nests deeper than "
                                      f"{MAX_JSON_DEPTH} levels; refusing to load")
        shapes: list[tuple[int, ...]] = []
        if "model.weights.h5" in archive.namelist():
            with archive.open("model.weights.h5") as weights:
                shapes = stored_shapes(weights, f"{path.name}/model.weights.h5")
    check_sizes(config, shapes, path.name)

