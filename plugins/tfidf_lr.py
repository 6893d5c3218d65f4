"""``tfidf-lr``: TF-IDF word or character n-grams + logistic regression."""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from engine import hookimpl
from engine.search_space import Categorical, Float, Int
from plugins.sklearn_pipeline import SklearnPipeline


class TfidfLR(SklearnPipeline):
    """TF-IDF n-grams + L2 logistic regression: a strong, fast, calibrated member.

    Parameters
    ----------
    analyzer : {"word", "char_wb", "char"}, default="word"
        What the n-grams are made of.
    ngram_range : tuple of int, default=(1, 2)
        N-gram sizes.
    min_df : int or float, default=2
        Ignore terms in fewer documents than this.
    max_features : int or None, default=None
        Keep only the most frequent terms.
    sublinear_tf : bool, default=True
        Use 1 + log(tf).
    C : float, default=1.0
        Inverse regularisation strength.
    class_weight : {"balanced"} or None, default=None
        Reweight classes inversely to their frequency.
    random_state : int or None, default=None
        Seed for the solver.

    Examples
    --------
    >>> import numpy as np
    >>> lr = TfidfLR(min_df=1).fit(["fire in the hills", "lovely day"] * 3, np.array([1, 0] * 3))
    >>> lr.predict(["hills on fire"]).tolist()
    [1]
    """

    name = "tfidf-lr"

    def __init__(self, *, analyzer: str = "word", ngram_range: tuple[int, int] = (1, 2),
                 min_df: int | float = 2, max_features: int | None = None,
                 sublinear_tf: bool = True, C: float = 1.0, class_weight: str | None = None,
                 random_state: int | None = None) -> None:
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.C = C
        self.class_weight = class_weight
        self.random_state = random_state

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Regularisation, n-grams (longer for characters than for words), cut-off, weights."""
        chars = (params or {}).get("analyzer", "word") != "word"
        ngrams = [(1, 4), (2, 4), (2, 5), (2, 6), (3, 6)] if chars else [(1, 1), (1, 2), (1, 3)]
        return {"C": Float(0.03, 100.0, log=True), "ngram_range": Categorical(ngrams),
                "min_df": Int(1, 5), "sublinear_tf": Categorical([False, True]),
                "class_weight": Categorical([None, "balanced"])}

    def _make_pipeline(self) -> Pipeline:
        return Pipeline([
            ("tfidf", TfidfVectorizer(analyzer=self.analyzer, ngram_range=tuple(self.ngram_range),
                                      min_df=self.min_df, max_features=self.max_features,
                                      sublinear_tf=self.sublinear_tf)),
            ("clf", LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=2000,
                                       random_state=self.random_state)),
        ])


@hookimpl
def register_plugins(register):
    register(TfidfLR)
