"""``fold-average``: a member predicted by the average of its K fold models, with no refit.

An ensemble fits K fold models of every member for the out-of-fold
probabilities anyway; for an expensive member (a fine-tuned transformer) the
(K+1)-th fit on all rows can be skipped and the fold models averaged instead,
as AutoGluon's bagging does. Fitting costs K fits instead of K + 1; predicting
costs K forward passes instead of one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone

from engine import registry
from engine.hookspecs import hookimpl
from engine.io.schema import NAME, SEED, read_checked, schema
from engine.protocol import POSITIVE_INT, ModelPlugin

FOLDS_JSON = "folds.json"
MAX_FOLDS = 100
FOLDS_SCHEMA = schema({
    "type": "object", "required": ["plugin", "n_folds"],
    "properties": {"plugin": NAME, "n_folds": {"type": "integer", "minimum": 1,
                                               "maximum": MAX_FOLDS},
                   "n_classes": {"type": "integer", "minimum": 2},
                   "random_state": SEED},
})


class FoldAverage(ModelPlugin):
    """Average of ``cv`` models of ``member``, each fitted on K-1 of K stratified folds.

    Parameters
    ----------
    member : plugin instance
        The unfitted model to fit once per fold.
    cv : int, default=5
    random_state : int or None, default=None
        Seeds the folds.

    Attributes
    ----------
    models_ : list of plugin
        The fitted fold models.

    Examples
    --------
    >>> from plugins.tfidf_nb import TfidfNB
    >>> bag = FoldAverage(TfidfNB(), cv=2, random_state=0)
    >>> bag.fit(["fire", "flood", "lunch", "game"] * 3, [1, 1, 0, 0] * 3).models_.__len__()
    2
    """

    name = "fold-average"
    _constraints: ClassVar[dict[str, list[Any]]] = {"cv": [POSITIVE_INT]}

    def __init__(self, member: Any, *, cv: int = 5, random_state: int | None = None) -> None:
        self.member = member
        self.cv = cv
        self.random_state = random_state

    @classmethod
    def from_fitted(cls, models: Sequence[Any], random_state: int | None = None
                    ) -> FoldAverage:
        """Wrap fold models an ensemble already fitted."""
        bag = cls(clone(models[0]), cv=len(models), random_state=random_state)
        bag.models_ = list(models)
        bag.n_classes_ = int(models[0].n_classes_)
        return bag

    def fit(self, X: Sequence[str], y: np.ndarray) -> FoldAverage:
        from sklearn.model_selection import StratifiedKFold

        self._check_params()
        texts, codes = self._validate_fit(X, y)
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        self.models_ = [clone(self.member).fit([texts[i] for i in train], codes[train])
                        for train, _ in folds.split(np.zeros(len(codes)), codes)]
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        X = self._validate_predict(X)
        proba = np.zeros((len(X), self.n_classes_))
        for model in self.models_:
            proba += model.predict_proba(X)
        return proba / len(self.models_)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        (directory / FOLDS_JSON).write_text(json.dumps(
            {"plugin": self.models_[0].name, "n_folds": len(self.models_),
             "n_classes": self.n_classes_, "random_state": self.random_state}))
        for i, model in enumerate(self.models_):
            (directory / f"fold-{i}").mkdir()
            model.save(directory / f"fold-{i}")

    @classmethod
    def load(cls, directory: str | Path) -> FoldAverage:
        directory = Path(directory)
        spec = read_checked(directory / FOLDS_JSON, FOLDS_SCHEMA)
        member_cls = registry.get_plugin(spec["plugin"])  # a registry lookup, never an import
        models = [member_cls.load(directory / f"fold-{i}") for i in range(spec["n_folds"])]
        return cls.from_fitted(models, spec.get("random_state"))


@hookimpl
def register_plugins(register):
    register(FoldAverage)
