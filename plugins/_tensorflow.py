"""Import TensorFlow quietly: its start-up and retracing logs are noise in a CLI."""

import os
from typing import Any


def import_tensorflow() -> Any:
    # Level 3: TF's C++ layer logs benign "errors" (e.g. unknown NodeDef attributes) at start-up.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf
