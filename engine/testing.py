"""Conformance kit: ``check_plugin(cls)`` runs the checks every model plugin must pass.

Like scikit-learn's ``check_estimator``, a plugin author tests a plugin in one line::

    from engine.testing import check_plugin

    def test_my_plugin():
        check_plugin(MyModel, params={"epochs": 2})
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

TOPICS = [
    ["fire", "smoke", "flames", "burning", "wildfire", "blaze"],
    ["flood", "water", "rain", "storm", "river", "surge"],
    ["lunch", "pizza", "coffee", "party", "movie", "music"],
]
FILLER = ["the", "a", "today", "near", "city", "people", "just", "now", "big", "so"]


def make_text_dataset(n_classes: int = 2, n_per_class: int = 40,
                      seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Small, learnable texts: class k is about topic k, with shared filler words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for k in range(n_classes):
        topic = TOPICS[k % len(TOPICS)] + [f"topic{k}"]
        for _ in range(n_per_class):
            words = list(rng.choice(topic, 3)) + list(rng.choice(FILLER, 4))
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(k)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], np.asarray(labels, dtype=np.int64)[order]


def _check(condition: bool, cls: type, message: str) -> None:
    if not condition:
        raise AssertionError(f"{cls.__name__}: {message}")


def _raises(fn: Callable[[], Any]) -> BaseException | None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - any clear error is acceptable here
        return exc
    return None


def check_plugin(cls: type, params: dict[str, Any] | None = None,
                 n_classes: tuple[int, ...] = (2, 3), seed: int = 0,
                 trusted: Sequence[str] = ()) -> None:
    """Run every conformance check on a plugin class; raise AssertionError on the first failure.

    Parameters
    ----------
    cls : type
        The plugin class.
    params : dict or None
        Constructor arguments to test with (e.g. few epochs for a neural model).
    n_classes : tuple of int, default=(2, 3)
        Class counts to check: binary and multi-class.
    seed : int, default=0
        ``random_state`` for the determinism check, when the plugin takes one.
    trusted : sequence of str, default=()
        What loading the saved plugin may follow, as ``engine.load(trusted=...)``
        (e.g. the TF Hub handle the test itself passed in ``params``).

    Checks
    ------
    registry name; constructor stores its params (``get_params``/``clone``);
    ``fit`` returns self; probabilities of shape (n, K), finite, in [0, 1],
    rows summing to 1; column k is class k; an empty string predicts; save
    writes only inside its directory and load predicts identical probabilities;
    two fits with the same ``random_state`` give identical probabilities;
    predicting before fit, and X/y of different lengths, raise errors; a
    string in its saved JSON files replaced by an import string is never
    imported by load, predict or a refit of the clone; an optional
    ``search_space()`` names only constructor parameters, with ranges of
    Float, Int or Categorical whose ends (and every choice) the plugin accepts;
    an optional ``fit_soft(X, P)`` is less confident on targets of 0.6 for
    the true class than ``fit`` on the labels, still predicts that class,
    saves and loads, and refuses P of the wrong shape.
    """
    params = dict(params or {})
    _check(isinstance(getattr(cls, "name", None), str) and bool(cls.name), cls,
           "needs a non-empty string class attribute `name`")
    for method in ("fit", "predict_proba", "save", "load", "get_params"):
        _check(callable(getattr(cls, method, None)), cls, f"has no {method}()")

    model = cls(**params)
    got = model.get_params(deep=False)
    for key, value in params.items():
        _check(key in got and got[key] is value, cls,
               f"constructor must store parameter {key!r} unchanged (scikit-learn convention)")
    if "random_state" in got and got["random_state"] is None:
        params["random_state"] = seed
    _check_search_space(cls, params, got)

    _check(_raises(lambda: cls(**params).predict_proba(["text"])) is not None, cls,
           "predict_proba before fit must raise (e.g. sklearn's NotFittedError)")

    for k in n_classes:
        X, y = make_text_dataset(k, seed=seed)
        model = cls(**params)
        _check(model.fit(X, y) is model, cls, "fit must return self")
        probe = [f"{' '.join(TOPICS[c % len(TOPICS)][:4])} topic{c}" for c in range(k)]
        proba = np.asarray(model.predict_proba(X + probe + [""]))
        _check(proba.shape == (len(X) + k + 1, k), cls,
               f"predict_proba must return shape (n, {k}), got {proba.shape}")
        _check(np.issubdtype(proba.dtype, np.floating) and np.isfinite(proba).all(), cls,
               "probabilities must be finite floats")
        _check(bool((proba >= 0).all() and (proba <= 1).all()), cls, "probabilities in [0, 1]")
        _check(np.allclose(proba.sum(axis=1), 1, atol=1e-5), cls, "rows must sum to 1")
        _check(np.array_equal(np.argmax(proba[len(X):len(X) + k], axis=1), np.arange(k)), cls,
               f"column k must be the probability of class k ({k} classes): clear examples of "
               f"each class were not ranked first in their own column")
        train_accuracy = float(np.mean(np.argmax(proba[:len(X)], axis=1) == y))
        _check(train_accuracy > 1.5 / k, cls, f"learns nothing on an easy {k}-class task "
                                              f"(training accuracy {train_accuracy:.2f})")
        # Same rows in the same batch: some kernels round differently by batch size.
        reference = np.asarray(model.predict_proba(X))
        _check_save_load(cls, model, X, reference, trusted, attack=k == n_classes[0])
        again = clone(model).fit(X, y) if hasattr(model, "get_params") else cls(**params).fit(X, y)
        _check(np.array_equal(np.asarray(again.predict_proba(X)), reference), cls,
               "two fits with the same params and random_state must give identical probabilities")
        if hasattr(cls, "fit_soft"):
            _check_fit_soft(cls, params, X, y, reference, trusted)

    X, y = make_text_dataset(2, seed=seed)
    _check(_raises(lambda: cls(**params).fit(X, y[:-3])) is not None, cls,
           "fit with X and y of different lengths must raise")


def _check_fit_soft(cls: type, params: dict[str, Any], X: list[str], y: np.ndarray,
                    sure: np.ndarray, trusted: Sequence[str]) -> None:
    """The optional ``fit_soft(X, P)`` learns class probabilities, not just labels.

    ``sure`` is what ``fit(X, y)`` predicts on X; one more fit, on the same
    labels held with 60% confidence, must be less sure (a plugin that took
    the most probable class would be as sure).
    """
    k = sure.shape[1]
    soft = np.where(np.eye(k)[y] == 1, 0.6, 0.4 / (k - 1))
    _check(_raises(lambda: cls(**params).fit_soft(X, soft[:-3])) is not None, cls,
           "fit_soft with fewer rows of P than texts must raise")
    learner = cls(**params)
    _check(learner.fit_soft(X, soft) is learner, cls, "fit_soft must return self")
    unsure = np.asarray(learner.predict_proba(X))
    _check(unsure.shape == (len(X), k) and np.allclose(unsure.sum(axis=1), 1, atol=1e-5), cls,
           f"after fit_soft, predict_proba must return rows of {k} probabilities summing to 1")
    _check(float(np.mean(unsure.argmax(axis=1) == y)) > 1.5 / k, cls,
           "fit_soft on targets that favour the true class must still predict it")
    _check(unsure.max(axis=1).mean() < sure.max(axis=1).mean() - 0.02, cls,
           f"fit_soft must learn the probabilities: targets of 0.6 for the true class gave "
           f"predictions as confident ({unsure.max(axis=1).mean():.2f}) as the labels "
           f"({sure.max(axis=1).mean():.2f})")
    _check_save_load(cls, learner, X, unsure, trusted, attack=False)


def _check_search_space(cls: type, params: dict[str, Any], got: dict[str, Any]) -> None:
    from engine.errors import EnsembleError
    from engine.search_space import declared_space, points

    if getattr(cls, "search_space", None) is None:
        return
    try:
        space = declared_space(cls, params)
    except EnsembleError as exc:
        raise AssertionError(f"{cls.__name__}: {exc}") from None
    for key, dist in space.items():
        _check(key in got, cls, f"search_space() names {key!r}, which is not a constructor "
                                f"parameter ({', '.join(sorted(got))})")
        for value in points(dist):
            model = cls(**{**params, key: value})
            error = _raises(model._check_params) if hasattr(model, "_check_params") else None
            _check(error is None, cls, f"search_space() range of {key!r} holds {value!r}, which "
                                       f"the plugin rejects: {error}")


def _check_save_load(cls: type, model: Any, X: list[str], proba: np.ndarray,
                     trusted: Sequence[str], attack: bool) -> None:
    from engine.io.trust import trusting

    with tempfile.TemporaryDirectory() as root:
        directory = Path(root) / "member"
        directory.mkdir()
        before = set(os.listdir(root))
        model.save(directory)
        _check(set(os.listdir(root)) == before, cls, "save must write only inside its directory")
        _check(any(directory.iterdir()), cls, "save wrote nothing")
        with trusting(trusted):
            loaded = cls.load(directory)
        _check(isinstance(loaded, cls), cls, "load must be a classmethod returning an instance")
        _check(np.array_equal(np.asarray(loaded.predict_proba(X)), proba), cls,
               "the loaded plugin must predict exactly what the saved one did")
        if attack:
            _check_follows_nothing(cls, directory, X, Path(root))


def _check_follows_nothing(cls: type, directory: Path, X: list[str], root: Path) -> None:
    """Each string in the saved JSON files, made an import string, is never imported."""
    import json
    import sys
    import uuid
    import warnings

    module = f"ensemble_payload_{uuid.uuid4().hex[:8]}"
    marker = root / "payload-ran"
    (root / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                       f"def run(*args, **kwargs):\n    return None\n")
    sys.path.insert(0, str(root))
    try:
        for path in sorted(directory.rglob("*.json")):
            original = path.read_text()
            document = json.loads(original)
            if not isinstance(document, dict):
                continue
            for key in [k for k, v in document.items() if isinstance(v, str)]:
                path.write_text(json.dumps({**document, key: f"{module}:run"}))
                with warnings.catch_warnings():  # a changed identity may warn: not the point
                    warnings.simplefilter("ignore")
                    try:
                        loaded = cls.load(directory)
                        loaded.predict_proba(X[:3])
                        clone(loaded).fit(X, np.arange(len(X)) % 2)
                    except Exception:  # noqa: BLE001 - refusing is the right answer
                        pass
                _check(not marker.exists(), cls,
                       f"loading, predicting or refitting imported the string saved as "
                       f"{key!r} in {path.name}: a model directory must name nothing that runs "
                       f"(use engine.importing.import_object, which refuses stored strings)")
            path.write_text(original)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(module, None)
