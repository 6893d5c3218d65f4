"""Keras files from a model directory, checked before Keras reads them.

Keras builds a model from its config before it reads a weight, so a 13 KB
``.keras`` file whose config asks for an Embedding of 10^9 rows allocates
gigabytes first. Here the sizes a config asks for must be backed by the
weights actually stored: every stored array must hold the bytes its shape
claims (contiguous, no links to other files), only the layer kinds our
members use are accepted, and the elements they would allocate may exceed
twice the elements stored only by :data:`FREE_ELEMENTS`. The archive
passes :func:`engine.io.files.check_archive`; ``safe_mode=True`` (no Lambda
layers, no arbitrary classes) stays with Keras.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from engine.errors import ModelDirectoryError
from engine.io.files import MAX_JSON_BYTES, check_archive, open_file, parse_json

# Layers whose weights are sized by the width of their input.
WEIGHTED = frozenset({"Dense", "Conv1D", "LSTM", "GRU"})
# Elements a config may ask for beyond what its weights back (2^26 float32 = 256 MiB):
# activations, lookup tables, a vectorizer's output.
FREE_ELEMENTS = 1 << 26
MAX_LAYERS = 256
# KerasHub encoder config keys that check_backbone_size prices.
BACKBONE_SIZES = frozenset({
    "vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
    "max_sequence_length", "num_segments", "embedding_dim", "num_groups",
    "num_inner_repetitions", "bucket_size"})
# The layers ensemble-engine's Keras members (keras-text, the use member's dense head) use.
LAYERS = frozenset({
    "Functional", "Sequential", "InputLayer", "TextVectorization", "Embedding", "Dense",
    "Dropout", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Conv1D", "LSTM", "GRU",
    "Bidirectional",
})


def stored_shapes(handle: str | Path | IO[bytes], name: str) -> list[tuple[int, ...]]:
    """The shapes of the arrays in a Keras ``.weights.h5`` file, each backed by its bytes.

    Soft and external links, and chunked, compressed, external or virtual
    datasets are refused: Keras never writes them, and they could point
    elsewhere or claim any shape for a few bytes.
    """
    import h5py

    shapes: list[tuple[int, ...]] = []

    def walk(group: Any, prefix: str) -> None:
        for key in group:
            link = group.get(key, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise ModelDirectoryError(f"'{name}' links {prefix}{key} elsewhere "
                                          f"({type(link).__name__}); refusing to load")
            item = group[key]
            if isinstance(item, h5py.Group):
                walk(item, f"{prefix}{key}/")
                continue
            claimed = int(np.prod(item.shape, dtype=object)) * item.dtype.itemsize
            if item.chunks is not None or item.external or item.is_virtual \
                    or item.id.get_storage_size() < claimed:
                raise ModelDirectoryError(f"weight {prefix}{key} in '{name}' claims shape "
                                          f"{item.shape} but does not store its bytes in "
                                          f"place; refusing to load")
            shapes.append(tuple(int(n) for n in item.shape))

    try:
        with h5py.File(handle, "r") as weights:
            walk(weights, "")
    except ModelDirectoryError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, ValueError ... on damage
        raise ModelDirectoryError(f"'{name}' is not a readable weights file ({exc})") from None
    return shapes


def _int(config: dict[str, Any], key: str, name: str, default: int = 0) -> int:
    value = config.get(key, default)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]  # kernel_size=[5]
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ModelDirectoryError(f"'{name}' sets {key}={value!r}; refusing to load")
    return value


def _last(shape: Any) -> Any:
    return shape[-1] if isinstance(shape, list) and shape else None


def _input_width(layer: dict[str, Any], name: str) -> int:
    """The input width Keras builds a layer with: its build_config, which must agree with
    every tensor the graph feeds it (else Keras would build for the tensor instead)."""
    width = _last((layer.get("build_config") or {}).get("input_shape"))
    nodes = layer.get("inbound_nodes") or []
    fed = [_last(((arg or {}).get("config") or {}).get("shape"))
           for node in nodes if isinstance(node, dict)
           for arg in (node.get("args") or [])[:1] if isinstance(arg, dict)]
    if width is None or any(w != width for w in fed):
        raise ModelDirectoryError(f"'{name}' gives a {layer.get('class_name')} layer no input "
                                  f"width, or one its inputs do not have; refusing to load")
    return _int({"width": width}, "width", name)


def _layer_elements(layer: dict[str, Any], name: str) -> int:
    """Elements a layer of a model ensemble-engine saves allocates when Keras builds it."""
    kind, config = layer.get("class_name"), layer.get("config")
    if not isinstance(config, dict) or kind not in LAYERS:
        raise ModelDirectoryError(f"'{name}' holds a {str(kind)[:40]!r} layer, which "
                                  f"ensemble-engine never saves; refusing to load")
    if kind in ("Functional", "Sequential"):
        inner = config.get("layers")
        if not isinstance(inner, list) or len(inner) > MAX_LAYERS:
            raise ModelDirectoryError(f"'{name}' has no layer list or over {MAX_LAYERS} "
                                      f"layers; refusing to load")
        return sum(_layer_elements(item, name) for item in inner)
    if kind == "Bidirectional":
        forward = config.get("layer")
        if not isinstance(forward, dict):
            raise ModelDirectoryError(f"'{name}' has a Bidirectional layer without its layer")
        return 2 * _layer_elements({**forward, "build_config": layer.get("build_config")},
                                   name)
    if kind in WEIGHTED:
        width = _input_width(layer, name)
    units, size = _int(config, "units", name), _int(config, "kernel_size", name)
    if kind == "Embedding":
        return _int(config, "input_dim", name) * _int(config, "output_dim", name)
    if kind == "Dense":
        return (width + 1) * units
    if kind == "Conv1D":
        return (size * width + 1) * _int(config, "filters", name)
    if kind in ("LSTM", "GRU"):
        return 4 * units * (width + units + 2)
    if kind == "TextVectorization":
        if _int(config, "ngrams", name) > 16:
            raise ModelDirectoryError(f"'{name}' asks for n-grams up to {config['ngrams']}; "
                                      f"at most 16")
        return _int(config, "max_tokens", name) + _int(config, "output_sequence_length", name)
    if kind == "InputLayer":
        shape = config.get("batch_shape") or []
        return math.prod(_int({"n": n}, "n", name, 1) for n in shape)
    return 0  # pooling and dropout own no weights


def _refuse_unbacked(asked: int, shapes: list[tuple[int, ...]], name: str) -> None:
    stored = sum(math.prod(shape) for shape in shapes)
    if asked > 2 * stored + FREE_ELEMENTS:
        raise ModelDirectoryError(
            f"'{name}' asks for about {asked:,} elements while {stored:,} are stored; "
            f"refusing to allocate for sizes its weights do not back")


def check_layer_sizes(config: Any, shapes: list[tuple[int, ...]], name: str) -> None:
    """Refuse a Keras model config that asks for more than ``shapes`` back.

    Only the layer kinds ensemble-engine's Keras members are made of are
    accepted (:data:`LAYERS`); what each allocates when built is computed
    from its config and summed over the model.
    """
    if not isinstance(config, dict):
        raise ModelDirectoryError(f"'{name}' holds no model config; refusing to load")
    _refuse_unbacked(_layer_elements(config, name), shapes, name)


def check_backbone_size(config: dict[str, Any], shapes: list[tuple[int, ...]],
                        name: str) -> None:
    """Refuse a KerasHub encoder config (BERT family) bigger than the weights stored."""
    def size(key: str, default: int = 0) -> int:
        value = config.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ModelDirectoryError(f"'{name}' sets {key}={value!r}; refusing to load")
        return value

    hidden, inner, vocab = size("hidden_dim"), size("intermediate_dim"), size("vocabulary_size")
    layers = size("num_layers")
    if layers > MAX_LAYERS:
        raise ModelDirectoryError(f"'{name}' asks for {layers:,} layers (at most "
                                  f"{MAX_LAYERS}); refusing to load")
    stored_layers = size("num_groups", layers)  # ALBERT stores one group its layers share
    embedding = size("embedding_dim", hidden)
    asked = (vocab * embedding + (size("max_sequence_length") + size("num_segments")) * hidden
             + stored_layers * (4 * hidden * hidden + 2 * hidden * inner)
             + 2 * size("bucket_size") * hidden)  # DeBERTa's relative positions
    if size("num_inner_repetitions", 1) > 16:
        raise ModelDirectoryError(f"'{name}' repeats each layer group "
                                  f"{config['num_inner_repetitions']:,} times; at most 16")
    unpriced = [k for k, v in config.items() if k not in BACKBONE_SIZES
                and isinstance(v, int) and not isinstance(v, bool) and abs(v) > 4096]
    if unpriced:
        raise ModelDirectoryError(f"'{name}' sets {unpriced[0]}={config[unpriced[0]]:,}, a "
                                  f"size this check does not know; refusing to load")
    _refuse_unbacked(asked, shapes, name)


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
        config = parse_json(archive.read(info), f"{path.name}/config.json")
        shapes: list[tuple[int, ...]] = []
        if "model.weights.h5" in archive.namelist():
            with archive.open("model.weights.h5") as weights:
                shapes = stored_shapes(weights, f"{path.name}/model.weights.h5")
    check_layer_sizes(config, shapes, path.name)
