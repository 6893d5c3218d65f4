"""Where member x fold fits run: this process, joblib workers, or a Dask cluster."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Iterator

from joblib import effective_n_jobs, parallel_config

from engine.errors import ConfigError
from engine.io.trust import refuse_stored

BACKENDS = ("loky", "threading", "dask")


def check_backend(backend: str | None, scheduler: str | None) -> None:
    """Raise a ConfigError for an unknown backend or a scheduler without the dask backend."""
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)} (or None), "
                          f"got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ConfigError("scheduler= is the address of a Dask cluster; it needs backend='dask'")


def worker_threads(n_jobs: int | None) -> int | None:
    """Threads each parallel worker may use so that together they fill the cores, not more."""
    workers = effective_n_jobs(n_jobs)
    if workers <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def limit_threads(threads: int | None) -> None:
    """In a worker: tell thread pools (TensorFlow reads ENSEMBLE_THREADS) how many to use."""
    if threads is None:
        return
    os.environ["ENSEMBLE_THREADS"] = str(threads)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"


# Set by `using_threads` for the work done in one context (a server's prediction thread).
_compute_threads: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "compute_threads", default=None)


def compute_threads() -> int:
    """Threads a member's own numeric work may use (the bundled sentence encoder's BLAS).

    :func:`using_threads`'s count where one applies, else ``$ENSEMBLE_THREADS`` (which
    :func:`limit_threads` sets in parallel workers), else the machine's cores.
    """
    threads = _compute_threads.get()
    if threads is None:
        setting = os.environ.get("ENSEMBLE_THREADS", "").strip()
        threads = int(setting) if setting.isdigit() else None
    return threads or os.cpu_count() or 1


@contextlib.contextmanager
def using_threads(threads: int | None) -> Iterator[None]:
    """Within: BLAS, OpenMP and the bundled sentence encoder use ``threads`` (None: unchanged).

    BLAS and OpenMP pools are per process: meant for the one thread that predicts.
    """
    if threads is None:
        yield
        return
    token = _compute_threads.set(threads)
    try:
        with _thread_pools().limit(limits=threads):
            yield
    finally:
        _compute_threads.reset(token)


@functools.cache
def _thread_pools():
    """The BLAS and OpenMP libraries loaded by the first call (finding them takes ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def fit_backend(backend: str | None, scheduler: str | None, n_jobs: int | None
                ) -> Iterator[tuple[int | None, int | None]]:
    """Configure joblib for the fits; yields ``(n_jobs, threads per worker)``.

    ``backend="dask"`` sends the fits to the dask.distributed cluster at
    ``scheduler`` (``"tcp://host:8786"``) through joblib's Dask backend; each
    task runs single-threaded, so the cluster's worker threads set the pace.
    """
    check_backend(backend, scheduler)
    if backend != "dask":
        # threads share this process: its thread pools are the user's to size
        threads = None if backend == "threading" else worker_threads(n_jobs)
        with parallel_config(backend=backend) if backend else contextlib.nullcontext():
            yield n_jobs, threads
        return
    if scheduler is None:
        raise ConfigError("backend='dask' needs scheduler='tcp://HOST:PORT', the address of "
                          "a running dask.distributed scheduler")
    # A cluster runs what it sends back: an address saved in a model directory is not followed.
    refuse_stored(scheduler, "Dask scheduler address")
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("backend='dask' needs dask.distributed: pip install distributed") \
            from None
    try:
        client = Client(scheduler, timeout="10s", set_as_default=False)
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one "
                          f"with `dask scheduler` or check the address") from exc
    try:
        with client.as_current(), parallel_config(backend="dask", client=client):
            yield -1, 1
    finally:
        client.close()
