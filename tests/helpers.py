"""Objects the tests name by import string, as a config file would."""

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


def count_lr_pipeline():
    return make_pipeline(CountVectorizer(), LogisticRegression())
