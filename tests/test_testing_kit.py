"""The conformance kit must catch broken plugins, or it proves nothing."""

import numpy as np
import pytest

from engine.testing import check_plugin
from plugins.tfidf_nb import TfidfNB


class SwappedColumns(TfidfNB):
    name = "swapped"

    def predict_proba(self, X):
        return super().predict_proba(X)[:, ::-1]


class Unnormalised(TfidfNB):
    name = "unnormalised"

    def predict_proba(self, X):
        return super().predict_proba(X) * 0.5


class Noisy(TfidfNB):
    name = "noisy"

    def predict_proba(self, X):
        proba = super().predict_proba(X)
        return proba if not hasattr(self, "calls_") else np.roll(proba, 1, axis=0)

    def fit(self, X, y):
        super().fit(X, y)
        if getattr(type(self), "fitted_once", False):
            self.calls_ = 1
        type(self).fitted_once = True
        return self


class ForgetfulSave(TfidfNB):
    name = "forgetful"

    @classmethod
    def load(cls, directory):
        return cls().fit(["alpha beta", "gamma delta"], np.array([0, 1]))


class ArgmaxSoft(TfidfNB):
    """Claims fit_soft but learns the most probable class: what distillation must not get."""

    name = "argmax-soft"

    def fit_soft(self, X, P):
        return self.fit(X, np.asarray(P).argmax(axis=1))


class LooseSoft(TfidfNB):
    """Accepts soft targets of any length."""

    name = "loose-soft"

    def fit_soft(self, X, P):
        P = np.asarray(P)
        return super().fit_soft(X[:len(P)], P)


@pytest.mark.parametrize("cls, message", [
    (ArgmaxSoft, "fit_soft must learn the probabilities"),
    (LooseSoft, "fewer rows of P than texts must raise"),
    (SwappedColumns, "column k"),
    (Unnormalised, "sum to 1"),
    (ForgetfulSave, "exactly what the saved one did"),
    (Noisy, "identical probabilities"),
])
def test_kit_rejects_broken_plugins(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_plugin(cls, n_classes=(2,))
