"""Objects the tests name by import string, and builders several test files share."""

from pathlib import Path

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


def count_lr_pipeline():
    return make_pipeline(CountVectorizer(), LogisticRegression())


def build_savedmodel(path: Path, dim: int = 512) -> Path:
    """A tiny TF Hub-style module: a batch of strings -> (n, dim) float32."""
    import tensorflow as tf

    class Encoder(tf.Module):
        def __init__(self):
            self.table = tf.Variable(tf.random.stateless_normal([500, dim], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            ids = tf.strings.to_hash_bucket_fast(tf.strings.split(tf.strings.lower(texts)), 500)
            summed = tf.reduce_sum(tf.gather(self.table, ids), axis=1)
            count = tf.cast(ids.row_lengths(), tf.float32)[:, None] + 1.0
            return summed / count

    tf.saved_model.save(Encoder(), str(path))
    return path
