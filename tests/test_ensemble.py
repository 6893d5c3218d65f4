import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from engine import Ensemble
from engine.errors import ConfigError, DataError, PluginNotFoundError
from plugins.tfidf_nb import TfidfNB

MEMBERS = {"nb": "tfidf-nb", "lr": ("tfidf-lr", {"min_df": 1})}


@pytest.mark.parametrize("labels", [["no", "yes"], [False, True], [10, 20]])
def test_labels_of_any_type_come_back_as_given(binary_texts, labels):
    X, codes = binary_texts
    y = np.array(labels, dtype=object if isinstance(labels[0], str) else None)[codes]
    ens = Ensemble(MEMBERS, cv=3, random_state=0).fit(X, y)
    assert ens.classes_.tolist() == sorted(labels)
    pred = ens.predict(X)
    assert type(pred[0].item() if hasattr(pred[0], "item") else pred[0]) is type(labels[0])
    assert np.mean(pred == y) > 0.9


@pytest.mark.parametrize("combiner", ["mean", "vote", "stacking"])
def test_multiclass_with_every_combiner(three_class_texts, combiner):
    X, y = three_class_texts
    labels = np.array(["fire", "flood", "food"])[y]
    ens = Ensemble(MEMBERS, combiner=combiner, cv=3, random_state=0).fit(X, labels)
    proba = ens.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert np.mean(ens.predict(X) == labels) > 0.9
    assert ens.oof_.shape == (2, len(X), 3)


def test_oof_probabilities_come_from_models_that_did_not_see_the_row(small_tweets):
    ens = Ensemble({"nb": "tfidf-nb"}, cv=5, random_state=0)
    ens.fit(small_tweets, small_tweets["target"])
    full = ens.members_["nb"].predict_proba(small_tweets["text"].tolist())
    oof_acc = np.mean(ens.oof_[0].argmax(1) == ens.y_codes_)
    full_acc = np.mean(full.argmax(1) == ens.y_codes_)
    assert full_acc > oof_acc + 0.05  # in-sample is optimistic; out-of-fold is not
    assert ens.scores_["nb"]["accuracy"] == pytest.approx(oof_acc)


def test_same_seed_same_probabilities(small_tweets):
    fit = lambda: Ensemble(MEMBERS, combiner="stacking", random_state=3).fit(  # noqa: E731
        small_tweets, small_tweets["target"]).predict_proba(small_tweets.head(50))
    assert np.array_equal(fit(), fit())


def test_is_a_scikit_learn_estimator(small_tweets):
    ens = Ensemble(MEMBERS, combiner="stacking", cv=3, random_state=0)
    copy = clone(ens)
    assert copy.get_params()["members"] == MEMBERS and copy is not ens
    scores = cross_val_score(ens, small_tweets["text"].tolist(), small_tweets["target"], cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.65


def test_recombine_swaps_combiner_and_members_without_refitting(small_tweets, monkeypatch):
    ens = Ensemble(MEMBERS, combiner="mean", random_state=0)
    ens.fit(small_tweets, small_tweets["target"])
    monkeypatch.setattr(TfidfNB, "fit", lambda *a: pytest.fail("refitted a member"))
    stacked = ens.recombine("stacking")
    assert stacked.combiner_.name == "stacking" and stacked.members_["nb"] is ens.members_["nb"]
    only_nb = ens.recombine(("mean", {}), members=["nb"])
    assert list(only_nb.members_) == ["nb"]
    np.testing.assert_allclose(only_nb.predict_proba(small_tweets.head(20)),
                               ens.members_["nb"].predict_proba(small_tweets.text.head(20)))
    with pytest.raises(ConfigError, match="this ensemble has"):
        ens.recombine("mean", members=["nope"])


def test_members_may_be_instances_names_or_name_and_params(binary_texts):
    X, y = binary_texts
    ens = Ensemble({"a": TfidfNB(alpha=0.5), "b": "tfidf-nb", "c": ("tfidf-nb", {"alpha": 2.0})},
                   cv=3).fit(X, y)
    assert [m.alpha for m in ens.members_.values()] == [0.5, 1.0, 2.0]


def test_several_text_columns_are_joined(small_tweets):
    ens = Ensemble({"nb": "tfidf-nb"}, text=["keyword", "text"], fill_na="", cv=3)
    ens.fit(small_tweets, small_tweets["target"])
    assert ens.predict(small_tweets.head(5)).shape == (5,)


@pytest.mark.parametrize("X, y, message", [
    (["a b", "c d", "e f"], [1, 1, 1], "at least two classes"),
    (["a b", "c d", "e f"], [1, 0], "3 rows but y has 2"),
    (["a b"] * 6, [0, 0, 0, 0, 1, 1], "class 1 has 2 rows, fewer than cv=3"),
    (["a b", None, "c d", "e f", "g h", "i j"], [0, 1] * 3, r"rows 1\); pass fill_na"),
    ([], [], "empty"),
    (["a b"] * 6, [0, "x", 0, "x", 0, "x"], "mix types"),
])
def test_bad_input_is_one_clear_line(X, y, message):
    with pytest.raises(DataError, match=message) as info:
        Ensemble({"nb": "tfidf-nb"}, cv=3).fit(X, y)
    assert "\n" not in str(info.value)


def test_fill_na_makes_missing_texts_usable(binary_texts):
    X, y = binary_texts
    X = list(X)
    X[0] = None
    frame = pd.DataFrame({"text": X})
    Ensemble({"nb": "tfidf-nb"}, cv=3, fill_na="").fit(frame, y)


@pytest.mark.parametrize("members, combiner, error, message", [
    ({"nb": "tfidf-nbb"}, "mean", PluginNotFoundError, "did you mean 'tfidf-nb'"),
    ({"nb": "tfidf-nb"}, "averge", PluginNotFoundError, "unknown combiner"),
    ({"nb": ("tfidf-nb", {"alpah": 1})}, "mean", ConfigError, "alpah"),
    ({"../x": "tfidf-nb"}, "mean", ConfigError, "member name"),
    ({}, "mean", ConfigError, "non-empty"),
])
def test_bad_config_fails_before_training(binary_texts, members, combiner, error, message):
    X, y = binary_texts
    with pytest.raises(error, match=message):
        Ensemble(members, combiner=combiner, cv=3).fit(X, y)
