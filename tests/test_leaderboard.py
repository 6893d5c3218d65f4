import json
import re

import numpy as np
import pandas as pd
import pytest

from engine import Ensemble, load
from engine.errors import ConfigError
from engine.metrics import classification_scores
from engine.registry import get_registry
from engine.thresholds import best_threshold

MEMBERS = {"nb": "tfidf-nb", "lr": ("tfidf-lr", {"min_df": 1})}


@pytest.fixture(scope="module")
def split(small_tweets):
    return small_tweets.iloc[:450], small_tweets.iloc[450:]


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    return Ensemble(MEMBERS, combiner="stacking", cv=3, random_state=0).fit(
        train, train["target"])


def test_leaderboard_on_data_has_every_member_and_registered_combiner(fitted, split):
    _, valid = split
    table = fitted.leaderboard(valid, valid["target"])
    expected = {"nb", "lr", "ensemble (stacking)", *(set(get_registry().combiners()) -
                                                    {"stacking"})}
    assert set(table.index) == expected
    assert {"accuracy", "precision", "recall", "f1", "f1_positive", "log_loss", "roc_auc",
            "fit_s", "predict_ms_per_row"} <= set(table.columns)
    assert table["f1_positive"].is_monotonic_decreasing  # best first
    assert table["roc_auc"].between(0.5, 1).all()
    assert (table["predict_ms_per_row"] > 0).all()
    # a member's row is that member's own score on the data
    nb_scores = classification_scores(valid["target"].to_numpy(),
                                      fitted.members_["nb"].predict_proba(valid["text"].tolist()))
    assert table.loc["nb", "f1_positive"] == pytest.approx(nb_scores["f1_positive"])


def test_leaderboard_without_data_uses_out_of_fold_probabilities(fitted):
    table = fitted.leaderboard()
    assert table.loc["nb", "accuracy"] == pytest.approx(fitted.scores_["nb"]["accuracy"])
    assert table.loc["ensemble (stacking)", "f1_positive"] == pytest.approx(
        fitted.scores_["ensemble"]["f1_positive"])
    assert "mean" in table.index and "vote" in table.index
    assert table.get("predict_ms_per_row", pd.Series(dtype=float)).isna().all()


def test_multiclass_leaderboard_reports_macro_f1_and_auc(three_class_texts):
    X, y = three_class_texts
    ens = Ensemble(MEMBERS, cv=3, random_state=0).fit(X, y)
    table = ens.leaderboard(X, y)
    assert "f1_macro" in table and "f1_positive" not in table
    assert table["roc_auc"].between(0.5, 1).all()


def test_best_threshold_maximises_f1():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(int)
    positive = np.clip(0.25 + 0.3 * y + rng.normal(0, 0.15, 400), 0, 1)
    t = best_threshold(y, positive, "f1")
    f1 = lambda cut: classification_scores(y, np.c_[1 - positive, positive],  # noqa: E731
                                           (positive >= cut).astype(int))["f1_positive"]
    assert all(f1(t) >= f1(c) - 1e-12 for c in np.linspace(0.05, 0.95, 91))


def test_tuned_threshold_beats_argmax_out_of_fold_and_is_used_by_predict(split):
    train, valid = split
    base = Ensemble(MEMBERS, combiner="mean", cv=3, random_state=0).fit(train, train["target"])
    tuned = Ensemble(MEMBERS, combiner="mean", cv=3, random_state=0, threshold="f1").fit(
        train, train["target"])
    assert tuned.scores_["ensemble"]["f1_positive"] >= base.scores_["ensemble"]["f1_positive"]
    assert 0 < tuned.threshold_ < 1 and tuned.threshold_ != 0.5
    proba = tuned.predict_proba(valid)
    np.testing.assert_array_equal(tuned.predict(valid), (proba[:, 1] >= tuned.threshold_))


def test_threshold_is_saved_in_the_manifest_and_used_after_loading(split, tmp_path):
    train, valid = split
    ens = Ensemble(MEMBERS, cv=3, random_state=0, threshold=0.3).fit(train, train["target"])
    ens.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["threshold"] == 0.3
    loaded = load(tmp_path / "m")
    assert loaded.threshold_ == 0.3
    np.testing.assert_array_equal(loaded.predict(valid), ens.predict(valid))
    assert (loaded.predict(valid) == (loaded.predict_proba(valid)[:, 1] >= 0.3)).all()


@pytest.mark.parametrize("threshold, message", [
    ("f2", "not a metric to tune for (did you mean 'f1'?)"),
    (1.5, "between 0 and 1"),
    (True, "between 0 and 1"),
])
def test_bad_thresholds_are_refused_before_fitting(binary_texts, threshold, message):
    X, y = binary_texts
    with pytest.raises(ConfigError, match=re.escape(message)):
        Ensemble(MEMBERS, threshold=threshold).fit(X, y)


def test_threshold_needs_two_classes(three_class_texts):
    X, y = three_class_texts
    with pytest.raises(ConfigError, match="needs two classes"):
        Ensemble(MEMBERS, cv=3, threshold="f1").fit(X, y)


def test_recombine_tunes_or_drops_the_threshold_without_refitting(fitted, split):
    _, valid = split
    tuned = fitted.recombine("stacking", threshold="f1")
    assert 0 < tuned.threshold_ < 1 and fitted.threshold_ is None  # the original is untouched
    assert tuned.members_["nb"] is fitted.members_["nb"]
    assert tuned.scores_["ensemble"]["f1_positive"] >= fitted.scores_["ensemble"]["f1_positive"]
    np.testing.assert_array_equal(tuned.predict(valid),
                                  tuned.predict_proba(valid)[:, 1] >= tuned.threshold_)
    kept = tuned.recombine("mean")  # not given: the setting is kept, re-tuned for "mean"
    assert kept.threshold == "f1" and 0 < kept.threshold_ < 1
    assert tuned.recombine("stacking", threshold=None).threshold_ is None
    with pytest.raises(ConfigError, match="not a metric to tune for"):
        fitted.recombine("stacking", threshold="f2")


def test_a_member_can_read_several_columns(split):
    train, valid = split
    ens = Ensemble(MEMBERS, cv=3, random_state=0, fill_na="",
                   member_text={"nb": ["keyword", "text"]}).fit(train, train["target"])
    texts = ens.member_texts(valid)
    keyword = valid["keyword"].fillna("").tolist()
    assert texts["nb"] == [f"{k} {t}" for k, t in zip(keyword, valid["text"], strict=True)]
    assert texts["lr"] == valid["text"].tolist()
    alone = ens.members_["nb"].predict_proba(texts["nb"])
    np.testing.assert_allclose(ens.member_proba(valid)["nb"], alone)
    with pytest.raises(Exception, match="column 'keyword' not found"):
        ens.predict(valid.drop(columns="keyword"))


def test_member_text_must_name_members(binary_texts):
    X, y = binary_texts
    with pytest.raises(ConfigError, match=r"member_text names \['svm'\]"):
        Ensemble(MEMBERS, member_text={"svm": "text"}).fit(pd.DataFrame({"text": X}), y)
