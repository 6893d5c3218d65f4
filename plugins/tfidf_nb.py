"""``tfidf-nb``: TF-IDF features + multinomial Naive Bayes, the tutorial's baseline."""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline

from engine import hookimpl
from engine.search_space import Categorical, Float, Int
from plugins.sklearn_pipeline import SklearnPipeline


class TfidfNB(SklearnPipeline):
    """TF-IDF + multinomial Naive Bayes; the defaults reproduce the tutorial baseline.

    Parameters
    ----------
    ngram_range : tuple of int, default=(1, 1)
        Word n-gram sizes for the TfidfVectorizer.
    min_df : int or float, default=1
        Ignore terms in fewer documents than this.
    max_features : int or None, default=None
        Keep only the most frequent terms.
    sublinear_tf : bool, default=False
        Use 1 + log(tf).
    lowercase : bool, default=True
        Lowercase texts before tokenising.
    alpha : float, default=1.0
        Additive smoothing of the Naive Bayes model.

    Examples
    --------
    >>> import numpy as np
    >>> nb = TfidfNB().fit(["fire in the hills", "lovely day"] * 3, np.array([1, 0] * 3))
    >>> nb.predict(["fire"]).tolist()
    [1]
    """

    name = "tfidf-nb"

    def __init__(self, *, ngram_range: tuple[int, int] = (1, 1), min_df: int | float = 1,
                 max_features: int | None = None, sublinear_tf: bool = False,
                 lowercase: bool = True, alpha: float = 1.0) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase
        self.alpha = alpha

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Smoothing, n-grams, rare-term cut-off and tf scaling."""
        return {"alpha": Float(1e-3, 3.0, log=True),
                "ngram_range": Categorical([(1, 1), (1, 2), (1, 3)]),
                "min_df": Int(1, 5), "sublinear_tf": Categorical([False, True])}

    def _make_pipeline(self) -> Pipeline:
        return Pipeline([
            ("tfidf", TfidfVectorizer(ngram_range=tuple(self.ngram_range), min_df=self.min_df,
                                      max_features=self.max_features,
                                      sublinear_tf=self.sublinear_tf, lowercase=self.lowercase)),
            ("clf", MultinomialNB(alpha=self.alpha)),
        ])


@hookimpl
def register_plugins(register):
    register(TfidfNB)
