"""Token ids and hidden states for the transformer member: computed once, batched by length.

Fine-tuning on a 2-core CPU is bound by the work the matrix products do, so
the member avoids work rather than wrapping it:

- each text is tokenized once per process (``TokenCache``), not once per fold
  and epoch;
- batches hold texts of similar length, padded only to the longest of them
  (tweets average 32 word-pieces: a fixed 64 would double
  the work);
- with frozen lower layers, their output for a text is computed once and
  reused by every fold and epoch (``HiddenStateCache``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

PAD_MULTIPLE = 1  # pad to the longest text in the batch: graphs are traced with relaxed shapes


class TokenCache:
    """Packed token ids by (tokenizer identity, max length, text), kept for the process."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()

    def ids(self, tokenizer: Any, identity: str, texts: Sequence[str], max_length: int
            ) -> list[np.ndarray]:
        """``[start] + tokens[:max_length - 2] + [end]`` for each text, as int32 arrays."""
        keys = [(identity, max_length, t) for t in texts]
        missing = sorted({k[2] for k in keys if k not in self._entries})
        if missing:
            ragged = tokenizer(missing)
            start, end = tokenizer.start_token_id, tokenizer.end_token_id
            for text, tokens in zip(missing, ragged, strict=True):
                body = np.asarray(tokens, dtype=np.int32)[:max_length - 2]
                self._entries[(identity, max_length, text)] = np.concatenate(
                    [[start], body, [end]]).astype(np.int32)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return [self._entries[k] for k in keys]


class HiddenStateCache:
    """Outputs of frozen lower layers by (lower-model identity, token ids), bounded in bytes."""

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()

    def get(self, identity: str, ids: np.ndarray) -> np.ndarray | None:
        key = (identity, ids.tobytes())
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, identity: str, ids: np.ndarray, hidden: np.ndarray) -> None:
        key = (identity, ids.tobytes())
        if key in self._entries or hidden.nbytes > self.max_bytes:
            return
        self._entries[key] = hidden
        self._bytes += hidden.nbytes
        while self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


TOKENS = TokenCache()
HIDDEN = HiddenStateCache()


def fingerprint(*parts: Any) -> str:
    """A short digest of strings, bytes and arrays (weights included) that names a state."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(str(part.shape).encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, bytes):
            digest.update(part)
        else:
            digest.update(str(part).encode())
    return digest.hexdigest()[:24]


def padded_length(lengths: Sequence[int]) -> int:
    longest = max(lengths)
    return -(-longest // PAD_MULTIPLE) * PAD_MULTIPLE


def length_batches(lengths: Sequence[int], batch_size: int,
                   rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Row indices grouped into batches of similar length.

    Without ``rng``: sorted by length (prediction). With it: sorted within
    random chunks of 50 batches and the batches shuffled, so each epoch sees
    a new order while padding stays small (training).
    """
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for i in range(0, len(order), chunk):
        part = order[i:i + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def pad_ids(ids: Sequence[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (B, T) padded with ``pad_id`` and the padding mask (B, T)."""
    width = padded_length([len(x) for x in ids])
    tokens = np.full((len(ids), width), pad_id, np.int32)
    mask = np.zeros((len(ids), width), np.int32)
    for row, x in enumerate(ids):
        tokens[row, :len(x)] = x
        mask[row, :len(x)] = 1
    return tokens, mask


def pad_hidden(hidden: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states (B, T, H) padded with zeros and their padding mask (B, T)."""
    width = padded_length([len(h) for h in hidden])
    out = np.zeros((len(hidden), width, hidden[0].shape[1]), np.float32)
    mask = np.zeros((len(hidden), width), np.int32)
    for row, h in enumerate(hidden):
        out[row, :len(h)] = h
        mask[row, :len(h)] = 1
    return out, mask


def batch_stream(make_batch: Any, batches: list[np.ndarray], labels: np.ndarray
                 ) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """``(inputs, labels)`` for each batch of row indices, for a tf.data generator."""
    for rows in batches:
        yield make_batch(rows), labels[rows]
