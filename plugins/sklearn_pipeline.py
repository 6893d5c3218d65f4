"""``sklearn``: any scikit-learn text classifier (e.g. a Pipeline) as a member."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import has_fit_parameter

from engine import ModelPlugin, hookimpl
from engine.errors import ConfigError
from engine.importing import build_estimator
from engine.protocol import proba_by_code, soft_rows
from engine.seeding import seeded


class SklearnPipeline(ModelPlugin):
    """Wrap a scikit-learn classifier that takes raw texts and has predict_proba.

    Parameters
    ----------
    pipeline : estimator or str
        An unfitted scikit-learn classifier that accepts a list of strings,
        usually ``Pipeline([("tfidf", TfidfVectorizer()), ("clf", ...)])``. A
        string ``"package.module:attribute"`` names an estimator or a function
        returning one, so config files can use it too.
    random_state : int or None, default=None
        Set on every step that has a ``random_state`` parameter.

    Attributes
    ----------
    pipeline_ : estimator
        The fitted clone.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.linear_model import LogisticRegression
    >>> member = SklearnPipeline(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    >>> member.fit(["good", "bad"] * 5, np.array([1, 0] * 5)).predict_proba(["good"]).shape
    (1, 2)
    """

    name = "sklearn"

    def __init__(self, pipeline: Any = None, *, random_state: int | None = None) -> None:
        self.pipeline = pipeline
        self.random_state = random_state

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Nothing: the pipeline is the user's; give ranges in ``[tune.space.<member>]``."""
        return {}

    def _make_pipeline(self) -> Any:
        """An unfitted estimator built from the parameters."""
        spec = build_estimator(self.pipeline)
        if spec is None or not is_classifier(spec) and not hasattr(spec, "predict_proba"):
            raise ConfigError("sklearn plugin needs pipeline=<a scikit-learn classifier with "
                              "predict_proba>, e.g. make_pipeline(TfidfVectorizer(), "
                              "LogisticRegression())")
        return clone(spec)

    def fit(self, X: Sequence[str], y: np.ndarray) -> SklearnPipeline:
        texts, codes = self._validate_fit(X, y)
        # Subclasses without a random_state parameter (tfidf-nb) have nothing to seed.
        pipeline = seeded(self._make_pipeline(), getattr(self, "random_state", None), deep=True)
        self.pipeline_ = pipeline.fit(texts, codes)
        return self

    def fit_soft(self, X: Sequence[str], P: np.ndarray) -> SklearnPipeline:
        """Learn class probabilities P (n, K): one weighted row per text and class.

        The feature steps of a Pipeline are fitted on each text once (copies
        would change document frequencies); only the classifier sees the
        weighted copies, through ``sample_weight``. A classifier that takes
        no weights is fitted on the most probable class, with a warning.
        """
        texts, targets = self._validate_fit_soft(X, P)
        pipeline = seeded(self._make_pipeline(), getattr(self, "random_state", None), deep=True)
        *steps, (_, classifier) = pipeline.steps if isinstance(pipeline, Pipeline) else \
            [("", pipeline)]
        if not has_fit_parameter(classifier, "sample_weight"):
            warnings.warn(f"{type(classifier).__name__} takes no sample_weight, so this "
                          f"'{self.name}' member learns the most probable class, not the "
                          f"probabilities", stacklevel=2)
            self.pipeline_ = pipeline.fit(texts, targets.argmax(axis=1))
            return self
        rows, codes, weights = soft_rows(targets)
        features = Pipeline(steps).fit_transform(texts) if steps else texts
        features = features[rows] if hasattr(features, "shape") else [features[i] for i in rows]
        classifier.fit(features, codes, sample_weight=weights)
        self.pipeline_ = pipeline
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        return proba_by_code(self.pipeline_, self._validate_predict(X), self.n_classes_)


@hookimpl
def register_plugins(register):
    register(SklearnPipeline)
