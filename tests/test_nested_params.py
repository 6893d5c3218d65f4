"""Members' parameters as nested parameters (``nb__alpha``), as scikit-learn's
VotingClassifier and StackingClassifier have them, for GridSearchCV and friends."""

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score

from engine import Ensemble
from engine.errors import ConfigError
from plugins.tfidf_nb import TfidfNB


@pytest.fixture(scope="module")
def texts(small_tweets):
    return small_tweets["text"].tolist(), small_tweets["target"].to_numpy()


def test_member_parameters_are_nested_params_for_names_and_instances():
    ens = Ensemble({"nb": "tfidf-nb", "use": ("use", {"head": "dense"}),
                    "cnn": ("keras-text", {"architecture": "conv1d", "epochs": 3}),
                    "own": TfidfNB(alpha=0.5)})
    params = ens.get_params(deep=True)
    assert (params["nb__alpha"], params["use__head"], params["cnn__epochs"],
            params["own__alpha"]) == (1.0, "dense", 3, 0.5)
    ens.set_params(nb__alpha=0.1, cnn__epochs=7, own__alpha=2.0, combiner="cascade",
                   combiner__margin=0.1)
    copy = clone(ens)
    got = copy.get_params()
    assert (got["nb__alpha"], got["cnn__epochs"], got["cnn__architecture"], got["own__alpha"],
            got["combiner__margin"]) == (0.1, 7, "conv1d", 2.0, 0.1)
    assert ens.members["nb"] == ("tfidf-nb", {"alpha": 0.1})  # a name stays a name


def test_a_mistyped_member_parameter_says_which_and_suggests():
    ens = Ensemble({"nb": "tfidf-nb"})
    with pytest.raises(ConfigError, match=r"'alpah' for member 'nb'.*did you mean 'alpha'"):
        ens.set_params(nb__alpah=0.1)
    with pytest.raises(ConfigError, match="'<member>__<param>'"):
        ens.set_params(nb_alpha=0.1)
    with pytest.raises(ConfigError, match="is an Ensemble parameter"):
        Ensemble({"cv": "tfidf-nb"}).fit(["a", "b"] * 5, [0, 1] * 5)


def test_sklearn_search_tools_reach_member_parameters(texts):
    X, y = texts
    named = Ensemble({"nb": "tfidf-nb"}, cv=2, random_state=0)
    instance = Ensemble({"nb": TfidfNB()}, cv=2, random_state=0)
    grid = {"nb__alpha": [0.01, 1.0]}
    results = [GridSearchCV(e, grid, cv=2, scoring="f1").fit(X, y) for e in (named, instance)]
    scores = [r.cv_results_["mean_test_score"] for r in results]
    assert scores[0][0] != scores[0][1]  # alpha reaches the member
    np.testing.assert_allclose(scores[0], scores[1])  # a name is as searchable as an instance
    assert results[0].best_estimator_.members_["nb"].alpha == results[0].best_params_[
        "nb__alpha"]

    named = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, cv=2, random_state=0)
    search = RandomizedSearchCV(named, {"lr__C": loguniform(0.1, 10)}, n_iter=2, cv=2,
                                random_state=0).fit(X, y)
    assert search.best_params_["lr__C"] == search.best_estimator_.members_["lr"].C
    low = cross_val_score(clone(named).set_params(lr__C=0.01, nb__alpha=50.0), X, y, cv=2)
    high = cross_val_score(clone(named).set_params(lr__C=10.0), X, y, cv=2)
    assert low.mean() < high.mean()


def test_sklearn_tags_say_text_input():
    tags = Ensemble({"nb": "tfidf-nb"}).__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
