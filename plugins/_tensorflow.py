"""Import TensorFlow quietly: its start-up and retracing logs are noise in a CLI."""

import contextlib
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
    return tf
