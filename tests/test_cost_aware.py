"""Greedy ensemble selection and the cascade: scores, what they run, what they cost."""

import numpy as np
import pytest

from engine import Ensemble
from engine.combiners.cascade import CascadeCombiner
from engine.combiners.selection import SelectionCombiner
from engine.errors import ConfigError


@pytest.fixture(scope="module")
def fitted(small_tweets):
    train = small_tweets.iloc[:450]
    members = {"nb": "tfidf-nb", "lr": "tfidf-lr",
               "char": ("tfidf-lr", {"analyzer": "char_wb", "ngram_range": (2, 4)})}
    return Ensemble(members, cv=3, random_state=0).fit(train, train["target"])


def test_selection_drops_a_useless_member_and_never_runs_it(fitted, small_tweets, monkeypatch):
    rng = np.random.default_rng(0)
    y = fitted.y_codes_
    noise = rng.dirichlet([1, 1], len(y))
    P = np.concatenate([fitted.oof_, noise[None]])
    combiner = SelectionCombiner(n_iter=30).fit(P, y, ["nb", "lr", "char", "noise"])
    assert combiner.weights_.sum() == pytest.approx(1) and combiner.weights_[3] == 0
    assert combiner.trajectory_[-1] <= combiner.trajectory_[0]  # log loss never gets worse
    # on the real ensemble: members with weight 0 are not asked to predict
    selected = fitted.recombine(("selection", {"n_iter": 1}))
    unused = [m for m, w in zip(selected.members_, selected.combiner_.weights_, strict=True)
              if w == 0]
    assert len(unused) == 2
    for name in unused:
        monkeypatch.setattr(selected.members_[name], "predict_proba",
                            lambda X: pytest.fail("a member with weight 0 was run"))
    assert selected.predict(small_tweets.iloc[450:]).shape == (150,)


def test_selection_score_is_cross_validated(fitted):
    selected = fitted.recombine("selection")
    mean = fitted.recombine("mean")
    # honest out-of-fold scores: selection cannot be far above the best fixed blend
    assert selected.scores_["ensemble"]["log_loss"] < mean.scores_["ensemble"]["log_loss"] + 0.05


def test_cascade_asks_later_members_only_about_undecided_rows(fitted, small_tweets, monkeypatch):
    cascade = fitted.recombine(("cascade", {"order": ["nb", "char"], "margin": 0.3}))
    valid = small_tweets.iloc[450:]
    full = np.stack([fitted.members_[m].predict_proba(valid["text"].tolist())
                     for m in fitted.members_])
    seen = {}
    for name in ("nb", "char"):
        original = cascade.members_[name].predict_proba

        def spy(X, name=name, original=original):
            seen[name] = len(X)
            return original(X)

        monkeypatch.setattr(cascade.members_[name], "predict_proba", spy)
    monkeypatch.setattr(cascade.members_["lr"], "predict_proba",
                        lambda X: pytest.fail("lr is not in the cascade's order"))
    proba = cascade.predict_proba(valid)
    assert seen["nb"] == len(valid) and 0 < seen["char"] < len(valid)
    # the same probabilities as the cascade computed from every member's probabilities
    np.testing.assert_allclose(proba, cascade.combiner_.predict_proba(full))


def test_cascade_with_the_widest_margin_is_the_mean(fitted, small_tweets):
    valid = small_tweets.iloc[450:]
    cascade = fitted.recombine(("cascade", {"margin": 0.5}))
    np.testing.assert_allclose(cascade.predict_proba(valid),
                               fitted.recombine("mean").predict_proba(valid))
    assert cascade.combiner_.reach_[-1] > 0.9


def test_leaderboard_shows_cost_of_each_combiner(fitted, small_tweets):
    valid = small_tweets.iloc[450:]
    table = fitted.leaderboard(valid, valid["target"])
    assert {"selection", "cascade"} <= set(table.index)
    ms = table["predict_ms_per_row"]
    mean = ms["ensemble (mean)"]
    assert ms["cascade"] < mean  # later members see only some rows
    assert mean == pytest.approx(ms[["nb", "lr", "char"]].sum(), rel=0.5)


@pytest.mark.parametrize("combiner, message", [
    (("cascade", {"margin": 0.7}), "margin must be in"),
    (("cascade", {"order": ["nb", "nope"]}), "must name members"),
    (("selection", {"metric": "f2"}), "did you mean 'f1'"),
    (("selection", {"n_iter": 0}), "positive integer"),
])
def test_bad_parameters_are_clear(fitted, combiner, message):
    with pytest.raises(ConfigError, match=message):
        fitted.recombine(combiner)


def test_doc_examples_hold():
    import doctest

    import engine.combiners.cascade as cascade
    import engine.combiners.selection as selection

    for module in (cascade, selection):
        assert doctest.testmod(module).failed == 0
    assert CascadeCombiner.name == "cascade"
