"""``char-svm``: character n-gram TF-IDF + linear SVM with calibrated probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from engine import ModelPlugin, hookimpl
from engine.protocol import proba_by_code
from engine.search_space import Categorical, Float

__version__ = "0.1.0"


class CharSVM(ModelPlugin):
    """Character n-gram TF-IDF + linear SVM, calibrated to probabilities.

    Parameters
    ----------
    ngram_range : tuple of int, default=(2, 5)
        Character n-gram sizes (within word boundaries).
    C : float, default=0.5
        SVM regularisation (smaller is stronger).
    calibration_cv : int, default=3
        Folds for the sigmoid calibration.
    random_state : int or None, default=None
    """

    name = "char-svm"
    # Plain-data helpers of CalibratedClassifierCV that skops does not trust by default.
    trusted_types = ("sklearn.calibration._CalibratedClassifier",
                     "sklearn.calibration._SigmoidCalibration")

    def __init__(self, ngram_range=(2, 5), C=0.5, calibration_cv=3, random_state=None):
        self.ngram_range = ngram_range
        self.C = C
        self.calibration_cv = calibration_cv
        self.random_state = random_state

    @classmethod
    def search_space(cls, params=None):
        """What `ensemble tune` searches: regularisation and n-gram sizes."""
        return {"C": Float(0.01, 10.0, log=True),
                "ngram_range": Categorical([(1, 4), (2, 5), (3, 6)])}

    def fit(self, X, y):
        texts, codes = self._validate_fit(X, y)
        folds = int(min(self.calibration_cv, np.bincount(codes).min()))
        svm = LinearSVC(C=self.C, random_state=self.random_state)
        self.pipeline_ = Pipeline([
            ("tfidf", TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.ngram_range),
                                      sublinear_tf=True, min_df=2)),
            ("svm", CalibratedClassifierCV(svm, cv=max(folds, 2), method="sigmoid")),
        ]).fit(texts, codes)
        return self

    def predict_proba(self, X):
        return proba_by_code(self.pipeline_, self._validate_predict(X), self.n_classes_)


@hookimpl
def register_plugins(register):
    register(CharSVM)
