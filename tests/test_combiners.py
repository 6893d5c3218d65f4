import numpy as np
import pytest

from engine.combiners import MeanCombiner, StackingCombiner, VoteCombiner
from engine.errors import ConfigError


def test_mean_averages_class_columns_with_weights():
    P = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.6, 0.4]]])
    combiner = MeanCombiner(weights={"a": 3, "b": 1}).fit(P, np.array([0, 1]), ["a", "b"])
    np.testing.assert_allclose(combiner.predict_proba(P), [[0.8, 0.2], [0.3, 0.7]])


def test_mean_rejects_unknown_member_weights():
    P = np.zeros((2, 1, 2)) + 0.5
    with pytest.raises(ConfigError, match="unknown members"):
        MeanCombiner(weights={"zz": 1}).fit(P, np.array([0]), ["a", "b"])


def test_vote_majority_and_deterministic_tie_break():
    # Two members, one vote each per row: a tie, broken by mean probability.
    P = np.array([[[0.9, 0.1, 0.0], [0.1, 0.0, 0.9]],
                  [[0.0, 0.6, 0.4], [0.0, 0.45, 0.55]]])
    combiner = VoteCombiner().fit(P, np.array([0, 2]), ["a", "b"])
    assert combiner.predict(P).tolist() == [0, 2]
    # Same votes, members swapped: same answer.
    assert VoteCombiner().fit(P[::-1], np.array([0, 2]), ["b", "a"]).predict(P[::-1]).tolist() \
        == [0, 2]
    np.testing.assert_allclose(combiner.predict_proba(P).sum(axis=1), 1)


def test_vote_exact_tie_picks_lowest_code():
    P = np.array([[[0.6, 0.4]], [[0.4, 0.6]]])
    assert VoteCombiner().fit(P, np.array([0]), ["a", "b"]).predict(P).tolist() == [0]


def test_stacking_learns_to_trust_the_good_member():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = np.where(rng.random(400) < 0.9, y, 1 - y)
    P = np.stack([np.eye(2)[good] * 0.8 + 0.1, rng.dirichlet([1, 1], 400)])
    combiner = StackingCombiner().fit(P, y, ["good", "noise"])
    assert np.mean(combiner.predict(P) == y) > 0.85
    coef = combiner.final_estimator_.coef_[0]
    assert abs(coef[0]) > 5 * abs(coef[1])


def test_stacking_accepts_any_classifier_and_rejects_non_classifiers():
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 90)
    P = np.stack([np.eye(3)[y] * 0.7 + 0.1] * 2)
    tree = StackingCombiner(final_estimator="sklearn.tree:DecisionTreeClassifier")
    assert np.mean(tree.fit(P, y, ["a", "b"]).predict(P) == y) == 1.0
    with pytest.raises(ConfigError, match="classifier"):
        StackingCombiner(final_estimator=StandardScaler()).fit(P, y, ["a", "b"])


def test_stacking_passthrough_uses_extra_columns():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    P = np.stack([rng.dirichlet([1, 1], 300)])  # useless member
    features = (y + rng.normal(0, 0.1, 300))[:, None]
    combiner = StackingCombiner(passthrough=["signal"]).fit(P, y, ["noise"], features)
    assert np.mean(combiner.predict(P, features) == y) > 0.95
    with pytest.raises(ConfigError, match="passthrough"):
        combiner.predict_proba(P)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_stacking_rows_do_not_depend_on_how_many_are_predicted_together(n_classes):
    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 300)
    P = np.stack([rng.dirichlet(np.ones(n_classes), 300) for _ in range(3)])
    stack = StackingCombiner(random_state=0).fit(P, y, ["a", "b", "c"])
    whole = stack.predict_proba(P)
    chunked = np.vstack([stack.predict_proba(P[:, i:i + 7]) for i in range(0, 300, 7)])
    assert np.array_equal(whole, chunked)
    sklearn = stack.final_estimator_.predict_proba(stack._features(P, None))
    assert np.allclose(whole, sklearn, rtol=0, atol=1e-12)
