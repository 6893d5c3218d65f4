"""``use``: Universal Sentence Encoder embeddings (or another encoder) -> a classifier head."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression

from engine import ModelPlugin, hookimpl
from engine.constraints import Options
from engine.encoder import Encoder
from engine.features import FeatureCache, fill_on_predict
from engine.io.keras_files import check_keras_archive
from engine.io.state import load_state, save_state
from engine.io.trust import refuse_stored
from engine.protocol import POSITIVE_INT, proba_by_code, proba_from_output, soft_rows
from engine.registry import get_registry
from engine.search_space import Float, Int
from plugins._tensorflow import import_tensorflow, seed_keras

HEADS = ("logistic", "dense")
KERAS_HEAD = "head.keras"


class SentenceEncoderClassifier(ModelPlugin):
    """Frozen sentence embeddings (512-d USE by default) with a trainable head.

    The tutorial's model 6 is ``head="dense"`` (Dense(64, relu) -> output, Keras 3);
    ``head="logistic"`` is scikit-learn's LogisticRegression, faster and as
    accurate on the disaster tweets. Embeddings go through the shared feature
    cache, so K-fold fits and refits encode every text once.

    Parameters
    ----------
    backend : str, default="bundled"
        A registered encoder: ``"bundled"`` (offline USE multilingual v3) or
        ``"tfhub"`` (a TF Hub module; set ``handle``).
    handle : str or None, default=None
        TF Hub URL or local SavedModel directory, for ``backend="tfhub"``.
    head : {"logistic", "dense"}, default="logistic"
    C : float, default=1.0
        Inverse regularisation of the logistic head.
    hidden_units : int, default=64
        Width of the dense head's hidden layer.
    epochs : int, default=5
    batch_size : int, default=32
    learning_rate : float, default=0.001
        Adam's learning rate for the dense head.
    cache : bool, default=True
        Use the on-disk feature cache (``ENSEMBLE_CACHE_DIR``).
    random_state : int or None, default=None

    Attributes
    ----------
    head_ : estimator or keras.Model
    encoder_identity_ : str
        Backend, model and version of the encoder the head was trained on.

    Examples
    --------
    >>> member = SentenceEncoderClassifier(head="logistic")  # doctest: +SKIP
    >>> member.fit(texts, codes).predict_proba(["forest fire"]).shape  # doctest: +SKIP
    (1, 2)
    """

    name = "use"
    _constraints: ClassVar[dict[str, list[Any]]] = {
        "head": [Options(*HEADS)],
        **{key: [POSITIVE_INT] for key in ("hidden_units", "epochs", "batch_size")},
    }

    def __init__(self, backend: str = "bundled", *, handle: str | None = None,
                 head: str = "logistic", C: float = 1.0, hidden_units: int = 64,
                 epochs: int = 5, batch_size: int = 32, learning_rate: float = 1e-3,
                 cache: bool = True, random_state: int | None = None) -> None:
        self.backend = backend
        self.handle = handle
        self.head = head
        self.C = C
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.cache = cache
        self.random_state = random_state

    def encoder(self) -> Encoder:
        """The configured encoder backend."""
        cls = get_registry().get_encoder(self.backend)
        if self.handle is None and cls.follows_handle:
            # Its default handle would be loaded (from a cache anyone may have filled).
            refuse_stored(self.backend, "encoder backend (a TF SavedModel by default handle)")
        return cls(handle=self.handle) if self.handle is not None else cls()

    def _embed(self, texts: list[str], write: bool = True) -> np.ndarray:
        encoder = self.encoder()
        if not self.cache:
            return encoder.encode(texts)
        return FeatureCache().encode(encoder, texts, write=write)

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The head's settings (the encoder is frozen): C, or the dense head's size and training."""
        if (params or {}).get("head", "logistic") == "logistic":
            return {"C": Float(0.01, 100.0, log=True)}
        return {"hidden_units": Int(16, 256, log=True), "epochs": Int(2, 15),
                "learning_rate": Float(1e-4, 1e-2, log=True)}

    def fit(self, X: Sequence[str], y: np.ndarray) -> SentenceEncoderClassifier:
        self._check_params()
        texts, codes = self._validate_fit(X, y)
        return self._fit_head(texts, codes)

    def fit_soft(self, X: Sequence[str], P: np.ndarray) -> SentenceEncoderClassifier:
        """Learn class probabilities P (n, K): weighted rows for the logistic head,
        cross-entropy against P for the dense one; each text is embedded once."""
        self._check_params()
        texts, targets = self._validate_fit_soft(X, P)
        return self._fit_head(texts, targets)

    def _fit_head(self, texts: list[str], targets: np.ndarray) -> SentenceEncoderClassifier:
        """Embed the texts and fit the head on class codes (1-d) or probabilities (2-d)."""
        encoder = self.encoder()
        encoder.check_available()
        features = self._embed(texts)
        if self.head == "logistic":
            head = LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
            if targets.ndim == 1:
                self.head_ = head.fit(features, targets)
            else:
                rows, codes, weights = soft_rows(targets)
                self.head_ = head.fit(features[rows], codes, sample_weight=weights)
        else:
            self.head_ = _fit_dense_head(features, targets, self.n_classes_, self)
        self.encoder_identity_ = encoder.identity
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        texts = self._validate_predict(X)
        if not texts:
            return np.zeros((0, self.n_classes_))
        # A million new tweets a day would fill the disk with vectors nobody reads again.
        features = self._embed(texts, write=fill_on_predict())
        if self.head == "logistic":
            return proba_by_code(self.head_, features, self.n_classes_)
        return proba_from_output(self.head_.predict(features, verbose=0))

    def save(self, directory: str | Path) -> None:
        if self.head == "dense":
            save_state(self, directory, exclude=("head_",))
            self.head_.save(Path(directory) / KERAS_HEAD)
        else:
            save_state(self, directory)

    @classmethod
    def load(cls, directory: str | Path) -> SentenceEncoderClassifier:
        self = load_state(cls, directory)
        if self.head == "dense":
            import_tensorflow()
            import keras

            check_keras_archive(Path(directory) / KERAS_HEAD)
            self.head_ = keras.saving.load_model(Path(directory) / KERAS_HEAD, safe_mode=True)
        encoder = self.encoder()
        encoder.check_available()  # says what to install or where to put the model
        if encoder.identity != self.encoder_identity_:
            warnings.warn(f"this member was trained on encoder {self.encoder_identity_}, "
                          f"{encoder.identity} is installed; predictions may differ",
                          stacklevel=2)
        return self


def _fit_dense_head(features: np.ndarray, targets: np.ndarray, n_classes: int,
                    params: SentenceEncoderClassifier) -> Any:
    """A dense head trained on class codes (1-d) or class probabilities (2-d)."""
    import_tensorflow()
    import keras

    seed_keras(params.random_state)
    binary = n_classes == 2
    model = keras.Sequential([
        keras.Input((features.shape[1],)),
        keras.layers.Dense(params.hidden_units, activation="relu"),
        keras.layers.Dense(1 if binary else n_classes, activation="sigmoid" if binary else
                           "softmax"),
    ])
    soft = targets.ndim == 2
    if soft:
        targets = (targets[:, 1] if binary else targets).astype("float32")
    else:
        targets = targets.astype("float32" if binary else "int64")
    model.compile(optimizer=keras.optimizers.Adam(params.learning_rate),
                  loss="binary_crossentropy" if binary else
                  "categorical_crossentropy" if soft else "sparse_categorical_crossentropy")
    model.fit(features, targets, epochs=params.epochs,
              batch_size=params.batch_size, verbose=0, shuffle=True)
    return model


@hookimpl
def register_plugins(register):
    register(SentenceEncoderClassifier)
