"""The text-encoder interface: batches of strings in, fixed-size float vectors out.

Encoders (a Universal Sentence Encoder backend, a TF Hub module, ...) are
registered through the ``register_encoders`` hook, like model plugins, so a
package can add one; members that use encoders share the feature cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from engine.errors import EnsembleError


class EncoderError(EnsembleError):
    """An encoder cannot be loaded or returned unusable output."""


class Encoder:
    """Base class: ``encode(texts) -> float32 array (n, dim)``.

    Subclasses set ``name``, take their configuration as constructor keyword
    arguments, and implement :meth:`_encode` and :attr:`identity`.

    Parameters
    ----------
    batch_size : int, default=128
        Texts per call to the underlying model.
    """

    name: ClassVar[str] = ""
    dim: int = 512
    # True when the encoder loads a model named by a handle (and runs its graph), even a
    # default one: a member loaded from a model directory then needs the user's trust.
    follows_handle: ClassVar[bool] = False

    def __init__(self, batch_size: int = 128) -> None:
        self.batch_size = batch_size

    @property
    def identity(self) -> str:
        """What makes two encoders give the same vectors (backend, model, version).

        The feature cache keys embeddings by it, and saved members record it.
        """
        raise NotImplementedError

    def check_available(self) -> None:
        """Raise EncoderError saying what to install or where to put the model."""

    def _encode(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def _encode_batches(self, batches: list[list[str]]) -> Iterator[Any]:
        """``_encode`` of each batch, in order; a subclass may run them in parallel."""
        return map(self._encode, batches)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, float32, shape (len(texts), dim)."""
        texts = list(texts)
        # Batches of similar length waste less work on padding.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), np.float32)
        batches = [order[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        encoded = self._encode_batches([[texts[r] for r in rows] for rows in batches])
        for rows, vectors in zip(batches, encoded, strict=True):
            batch = np.asarray(vectors, dtype=np.float32)
            if batch.shape != (len(rows), self.dim):
                raise EncoderError(f"encoder {self.identity} returned shape {batch.shape} for "
                                   f"{len(rows)} texts; expected ({len(rows)}, {self.dim})")
            out[rows] = batch
        return out
