"""Import TensorFlow quietly: its C++ start-up logging is noise in a CLI."""

import os
from typing import Any


def import_tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf
