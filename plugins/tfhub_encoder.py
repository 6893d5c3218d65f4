"""``tfhub`` encoder: a TF Hub text-embedding module, loaded with ``tensorflow_hub.load``.

Not ``hub.KerasLayer``: that needs Keras 2 (tf-keras), while TensorFlow 2.16+
ships Keras 3. The module is called directly on batches of strings.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Any

from engine import hookimpl
from engine.encoder import Encoder, EncoderError
from engine.io.trust import refuse_stored
from plugins._tensorflow import import_tensorflow

USE_V4 = "https://tfhub.dev/google/universal-sentence-encoder/4"


def _is_url(handle: str) -> bool:
    return handle.startswith(("http://", "https://", "gs://"))


@cache
def _load(handle: str) -> Any:
    import_tensorflow()
    import tensorflow_hub as hub

    try:
        return hub.load(handle)
    except Exception as exc:  # hub raises OSError, URLError, ValueError, tf errors ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EncoderError(
            f"cannot load TF Hub module '{handle}' ({first}); without network access, "
            f"download it elsewhere and pass its local directory as handle, or set "
            f"TFHUB_CACHE_DIR to a folder that holds it") from None


class TFHubEncoder(Encoder):
    """Any TF Hub module that maps a batch of strings to (n, dim) float vectors.

    Parameters
    ----------
    handle : str, default="https://tfhub.dev/google/universal-sentence-encoder/4"
        A TF Hub URL or a local SavedModel directory. ``TFHUB_CACHE_DIR`` is
        honoured by ``tensorflow_hub`` for downloads.
    dim : int, default=512
        The embedding size the module must return.
    batch_size : int, default=128
    """

    name = "tfhub"
    follows_handle = True

    def __init__(self, handle: str = USE_V4, *, dim: int = 512, batch_size: int = 128) -> None:
        super().__init__(batch_size)
        if not isinstance(handle, str) or not handle.strip():
            raise EncoderError("handle must be a TF Hub URL or a local SavedModel directory")
        # A SavedModel runs its own graph: one named by a model directory is never loaded.
        refuse_stored(handle, "TF SavedModel (TF Hub handle)")
        if not isinstance(dim, int) or dim <= 0:
            raise EncoderError(f"dim must be a positive integer, got {dim!r}")
        self.handle = handle
        self.dim = dim

    @property
    def identity(self) -> str:
        if _is_url(self.handle):
            return f"tfhub:{self.handle}"
        self.check_available()
        # A local directory can be replaced in place: key the cache by its content too.
        digest = hashlib.sha256((Path(self.handle) / "saved_model.pb").read_bytes()).hexdigest()
        return f"tfhub:{os.path.abspath(self.handle)}:{digest[:16]}"

    def check_available(self) -> None:
        if _is_url(self.handle):
            return
        if not (Path(self.handle) / "saved_model.pb").is_file():
            raise EncoderError(f"no TF Hub SavedModel at '{self.handle}' (saved_model.pb "
                               f"missing); put the downloaded module there or pass its URL")

    def _encode(self, texts: list[str]) -> Any:
        tf = import_tensorflow()
        module = _load(self.handle)
        try:
            out = module(tf.constant(texts, dtype=tf.string))
        except Exception as exc:
            raise EncoderError(f"TF Hub module '{self.handle}' does not take a batch of "
                               f"strings: {type(exc).__name__}") from None
        if isinstance(out, dict):  # some modules return {"default": ...} or {"outputs": ...}
            out = out.get("outputs", out.get("default", next(iter(out.values()))))
        return out.numpy()


@hookimpl
def register_encoders(register):
    register(TFHubEncoder)
