"""TensorFlow for the plugins: imported quietly, thread-limited, and seeded for determinism."""

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    # TF's C++ layer writes CUDA probing lines to fd 2 before its log level applies.
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (e.g. some embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> Any:
    if "tensorflow" not in sys.modules:
        # Level 3: TF's C++ layer logs benign "errors" (e.g. unknown NodeDef attributes).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with _stderr_silenced():
            import tensorflow  # noqa: F401
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    _limit_threads(tf)
    return tf


def _limit_threads(tf: Any) -> None:
    """Honour ENSEMBLE_THREADS, which the engine sets in parallel workers.

    Without it, every worker's TensorFlow would start one thread per core and
    n_jobs workers would oversubscribe the machine n_jobs times.
    """
    threads = os.environ.get("ENSEMBLE_THREADS")
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime started already in this process: too late to change
        pass


def seed_keras(random_state: int | None) -> None:
    """Seed Keras (Python, NumPy, TensorFlow) and make TensorFlow's ops deterministic.

    Same seed and data, same probabilities, bit for bit on CPU; nothing
    happens when ``random_state`` is None.
    """
    if random_state is None:
        return
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(random_state)
    tf.config.experimental.enable_op_determinism()


# CPU flags (Linux /proc/cpuinfo) of instructions that compute bfloat16 natively.
BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def bfloat16_is_fast() -> bool:
    """Whether bfloat16 runs natively here: an Ampere-or-newer GPU, or a CPU with bf16 units.

    Elsewhere TensorFlow emulates it, and a transformer predicts about 6x slower
    than in float32 (measured on an AVX2-only EPYC: 15 against 91-99 rows/s).
    """
    tf = import_tensorflow()
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= (8, 0):
            return True
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return bool(BFLOAT16_CPU_FLAGS & set(line.split(":", 1)[-1].split()))
    except OSError:  # not Linux: no way to tell without a C extension, so assume emulation
        pass
    return False
