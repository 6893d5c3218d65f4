import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.pipeline import make_pipeline

from engine.data import holdout_split
from engine.errors import ConfigError, DataError
from engine.testing import check_plugin
from plugins.sklearn_pipeline import SklearnPipeline
from plugins.tfidf_lr import TfidfLR
from plugins.tfidf_nb import TfidfNB


@pytest.mark.parametrize("cls, params", [
    (TfidfNB, {}),
    (TfidfLR, {}),
    (TfidfLR, {"analyzer": "char_wb", "ngram_range": (2, 4)}),
    (SklearnPipeline, {"pipeline": make_pipeline(CountVectorizer(), LogisticRegression())}),
])
def test_builtin_plugins_pass_the_conformance_kit(cls, params):
    check_plugin(cls, params=params)


def test_tfidf_nb_reproduces_the_tutorial_baseline(tweets):
    train, valid = holdout_split(tweets, 0.1, 42)
    assert (len(train), len(valid)) == (6851, 762)
    model = TfidfNB().fit(train["text"], train["target"].to_numpy())
    pred = model.predict(valid["text"])
    precision, recall, f1, _ = precision_recall_fscore_support(valid["target"], pred,
                                                               average="weighted")
    assert round(100 * accuracy_score(valid["target"], pred), 2) == 79.27
    assert round(precision, 4) == 0.8111
    assert round(f1, 4) == 0.7862


def test_sklearn_plugin_takes_an_import_string(binary_texts):
    X, y = binary_texts
    model = SklearnPipeline("tests.helpers:count_lr_pipeline").fit(X, y)
    assert model.predict_proba(X).shape == (len(X), 2)


def test_sklearn_plugin_rejects_a_non_classifier():
    with pytest.raises(ConfigError, match="predict_proba"):
        SklearnPipeline(CountVectorizer()).fit(["a", "b"], np.array([0, 1]))


def test_plugin_names_non_text_rows():
    with pytest.raises(DataError, match=r"rows 1, 3"):
        TfidfNB().fit(["ok", None, "fine", 3.0], np.array([0, 1, 0, 1]))
