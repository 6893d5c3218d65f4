"""``keras-text``: Keras 3 text classifiers that take raw strings (the tutorials' models).

The TextVectorization layer lives inside the saved ``.keras`` model, so a
loaded member reads raw text and predicts exactly what the saved one did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from engine import ModelPlugin, hookimpl
from engine.constraints import Interval, Options
from engine.errors import ConfigError
from engine.io.keras_files import check_keras_archive
from engine.io.schema import read_checked
from engine.io.state import load_state, save_state
from engine.protocol import POSITIVE_INT, proba_from_output
from engine.search_space import Categorical, Float, Int
from plugins._tensorflow import import_tensorflow, seed_keras

ARCHITECTURES = ("dense", "lstm", "gru", "bilstm", "conv1d", "mean-embedding", "multi-hot")
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
# Texts per call of the network when predicting: bounds the memory of a large call.
PREDICT_CHUNK = 1024


class KerasText(ModelPlugin):
    """A Keras 3 text classifier: TextVectorization -> architecture -> sigmoid/softmax head.

    Architectures (as in the tutorials):

    - ``dense``: Embedding -> GlobalAveragePooling1D (optional dropout, Dense with L2)
    - ``lstm``, ``gru``, ``bilstm``: Embedding -> (Bidirectional) LSTM/GRU(units)
    - ``conv1d``: Embedding -> Conv1D(filters, kernel_size, relu) -> GlobalMaxPool1D
    - ``mean-embedding``: Embedding -> mean over all positions (the Trax model)
    - ``multi-hot``: multi-hot bag of words -> Dense(16, relu) -> Dense(16, relu)

    Two classes get one sigmoid unit, more get a softmax; ``predict_proba``
    always returns (n, K).

    Parameters
    ----------
    architecture : str, default="dense"
    max_tokens : int, default=10000
        Vocabulary size (a smaller vocabulary in the data is fine).
    sequence_length : int, default=15
        Tokens per text; longer texts are truncated, shorter padded.
    standardize : str or None, default="lower_and_strip_punctuation"
    ngrams : int or None, default=None
        Also index n-grams up to this size.
    embedding_dim : int, default=128
    units : int, default=64
        LSTM/GRU units.
    filters, kernel_size : int, default=32, 5
        Conv1D settings.
    hidden_units : int or None, default=None
        Hidden Dense width; None means the architecture's default (16 for
        multi-hot, none otherwise).
    dropout : float, default=0.0
    l2 : float, default=0.0
        L2 penalty on the hidden Dense layer.
    epochs, batch_size : int, default=5, 32
    optimizer : str, default="adam"
    learning_rate : float, default=0.001
    validation_split : float, default=0.0
        Fraction of the training rows held out to monitor each epoch.
    early_stopping : bool, default=False
        Stop when validation loss stops improving and restore the best epoch
        (needs ``validation_split``).
    patience : int, default=2
    class_weight : "balanced", dict or None, default=None
    random_state : int or None, default=None
        Seeds Keras and enables TensorFlow op determinism: same seed and data,
        same probabilities.
    verbose : int, default=0
        Keras's progress output (0 silent, 1 progress bar, 2 one line per epoch).

    Attributes
    ----------
    model_ : keras.Model
    history_ : dict of str to list of float
        Loss and metrics per epoch; ``plot_history(path)`` draws them.

    Examples
    --------
    >>> member = KerasText("conv1d", epochs=5, random_state=42)   # doctest: +SKIP
    >>> member.fit(texts, codes).predict_proba(["forest fire"])   # doctest: +SKIP
    """

    name = "keras-text"
    _constraints: ClassVar[dict[str, list[Any]]] = {
        "architecture": [Options(*ARCHITECTURES)],
        **{key: [POSITIVE_INT] for key in ("max_tokens", "sequence_length", "embedding_dim",
                                           "units", "filters", "kernel_size", "epochs",
                                           "batch_size", "patience")},
        "hidden_units": [None, POSITIVE_INT],
        "ngrams": [None, POSITIVE_INT],
        "dropout": [Interval(float, 0, 1)],
        "validation_split": [Interval(float, 0, 1)],
        "l2": [Interval(float, 0, None)],
        "learning_rate": [Interval(float, 0, None, "neither")],
        "class_weight": [None, Options("balanced"), dict],
    }

    def __init__(self, architecture: str = "dense", *, max_tokens: int = 10000,
                 sequence_length: int = 15,
                 standardize: str | None = "lower_and_strip_punctuation",
                 ngrams: int | None = None, embedding_dim: int = 128, units: int = 64,
                 filters: int = 32, kernel_size: int = 5, hidden_units: int | None = None,
                 dropout: float = 0.0, l2: float = 0.0, epochs: int = 5, batch_size: int = 32,
                 optimizer: str = "adam", learning_rate: float = 0.001,
                 validation_split: float = 0.0, early_stopping: bool = False, patience: int = 2,
                 class_weight: str | dict | None = None, random_state: int | None = None,
                 verbose: int = 0) -> None:
        self.architecture = architecture
        self.max_tokens = max_tokens
        self.sequence_length = sequence_length
        self.standardize = standardize
        self.ngrams = ngrams
        self.embedding_dim = embedding_dim
        self.units = units
        self.filters = filters
        self.kernel_size = kernel_size
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.l2 = l2
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Training and size settings, plus those of the chosen architecture."""
        space: dict[str, Any] = {
            "learning_rate": Float(1e-4, 1e-2, log=True), "epochs": Int(2, 10),
            "batch_size": Categorical([16, 32, 64]), "dropout": Float(0.0, 0.5),
            "embedding_dim": Int(16, 256, log=True), "sequence_length": Int(10, 60)}
        architecture = (params or {}).get("architecture", "dense")
        if architecture in ("lstm", "gru", "bilstm"):
            space["units"] = Int(16, 128, log=True)
        elif architecture == "conv1d":
            space.update(filters=Int(16, 128, log=True), kernel_size=Int(2, 7))
        return space

    # -- checks ------------------------------------------------------------------

    def _check_params(self) -> None:
        """Every configuration error surfaces here, before any training."""
        super()._check_params()
        if self.max_tokens < 3:
            raise ConfigError("max_tokens must be at least 3 (padding, unknown, one word)")
        if self.early_stopping and not self.validation_split:
            raise ConfigError("early_stopping needs validation_split > 0 to watch")

    # -- model -------------------------------------------------------------------

    def _build(self, texts: list[str], n_classes: int, soft: bool = False) -> Any:
        tf = import_tensorflow()
        import keras
        from keras import layers

        multi_hot = self.architecture == "multi-hot"
        vectorizer = layers.TextVectorization(
            max_tokens=self.max_tokens, standardize=self.standardize, ngrams=self.ngrams,
            output_mode="multi_hot" if multi_hot else "int",
            output_sequence_length=None if multi_hot else self.sequence_length)
        vectorizer.adapt(tf.constant(texts, dtype=tf.string))
        inputs = keras.Input(shape=(1,), dtype="string", name="text")
        x = vectorizer(inputs)
        hidden = self.hidden_units if self.hidden_units is not None else (16 if multi_hot else 0)
        regularizer = keras.regularizers.L2(self.l2) if self.l2 else None
        if not multi_hot:
            x = layers.Embedding(vectorizer.vocabulary_size(), self.embedding_dim)(x)
            if self.dropout:
                x = layers.Dropout(self.dropout)(x)
            x = self._body(layers, x)
        else:
            x = layers.Dense(hidden, activation="relu", kernel_regularizer=regularizer)(x)
        if self.architecture == "mean-embedding":
            hidden = 0  # the Trax model: embedding mean straight into the output layer
        elif self.dropout:
            x = layers.Dropout(self.dropout)(x)
        if hidden:
            x = layers.Dense(hidden, activation="relu", kernel_regularizer=regularizer)(x)
            if self.dropout:
                x = layers.Dropout(self.dropout)(x)
        binary = n_classes == 2
        outputs = layers.Dense(1 if binary else n_classes,
                               activation="sigmoid" if binary else "softmax")(x)
        model = keras.Model(inputs, outputs, name=f"keras_text_{self.architecture}")
        optimizer = keras.optimizers.get({"class_name": self.optimizer,
                                          "config": {"learning_rate": self.learning_rate}})
        model.compile(optimizer=optimizer,
                      loss="binary_crossentropy" if binary else
                      "categorical_crossentropy" if soft else "sparse_categorical_crossentropy",
                      metrics=[] if soft else ["accuracy"])
        return model

    def _body(self, layers: Any, x: Any) -> Any:
        arch = self.architecture
        if arch in ("dense", "mean-embedding"):
            # No mask: the mean runs over all positions, padding included, as in the
            # tutorials (Keras GlobalAveragePooling1D, Trax Mean(axis=1)).
            return layers.GlobalAveragePooling1D()(x)
        if arch == "lstm":
            return layers.LSTM(self.units)(x)
        if arch == "gru":
            return layers.GRU(self.units)(x)
        if arch == "bilstm":
            return layers.Bidirectional(layers.LSTM(self.units))(x)
        # "valid" as in the tutorial; "same" only when texts are shorter than the kernel.
        padding = "valid" if self.sequence_length >= self.kernel_size else "same"
        x = layers.Conv1D(self.filters, self.kernel_size, activation="relu", padding=padding)(x)
        return layers.GlobalMaxPooling1D()(x)

    def _sample_weight(self, codes: np.ndarray) -> np.ndarray | None:
        """Each row's class weight (by its label, or its most probable class when soft)."""
        if self.class_weight == "balanced":
            counts = np.bincount(codes, minlength=self.n_classes_)
            weights = {k: len(codes) / (self.n_classes_ * c) for k, c in enumerate(counts) if c}
        elif isinstance(self.class_weight, dict):
            weights = {int(k): float(v) for k, v in self.class_weight.items()}
        else:
            return None
        return np.array([weights.get(int(c), 1.0) for c in codes], dtype="float32")

    # -- protocol ----------------------------------------------------------------

    def fit(self, X: Sequence[str], y: np.ndarray) -> KerasText:
        self._check_params()
        texts, codes = self._validate_fit(X, y)
        return self._train(texts, codes.astype("float32" if self.n_classes_ == 2 else "int64"),
                           codes)

    def fit_soft(self, X: Sequence[str], P: np.ndarray) -> KerasText:
        """Learn class probabilities P (n, K): cross-entropy against P, not one-hot labels."""
        self._check_params()
        texts, targets = self._validate_fit_soft(X, P)
        target = targets[:, 1] if self.n_classes_ == 2 else targets
        return self._train(texts, target.astype("float32"), targets.argmax(axis=1), soft=True)

    def _train(self, texts: list[str], target: np.ndarray, codes: np.ndarray,
               soft: bool = False) -> KerasText:
        """Build and fit the network on ``target`` (class weights follow ``codes``)."""
        tf = import_tensorflow()
        import keras

        seed_keras(self.random_state)
        model = self._build(texts, self.n_classes_, soft)
        callbacks = []
        if self.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.patience, restore_best_weights=True))
        history = model.fit(
            tf.constant(texts, dtype=tf.string)[:, None], target, epochs=self.epochs,
            batch_size=self.batch_size, validation_split=self.validation_split or 0.0,
            sample_weight=self._sample_weight(codes), callbacks=callbacks, verbose=self.verbose)
        self.model_ = model
        self.history_ = {k: [float(v) for v in values] for k, values in history.history.items()}
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        texts = self._validate_predict(X)
        if not texts:
            return np.zeros((0, self.n_classes_))
        tf = import_tensorflow()
        # predict_on_batch, not predict: predict builds a dataset, an iterator and callbacks
        # on every call, about 0.1 s, most of the time of a served request of 32 texts. The
        # compiled function is the same; it traces twice, then takes any number of rows.
        chunk = max(self.batch_size, PREDICT_CHUNK)
        out = [np.asarray(self.model_.predict_on_batch(
            tf.constant(texts[i:i + chunk], dtype=tf.string)[:, None]))
            for i in range(0, len(texts), chunk)]
        return proba_from_output(np.concatenate(out))

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        save_state(self, directory, exclude=("model_", "history_"))
        self.model_.save(directory / MODEL_FILE)
        (directory / HISTORY_FILE).write_text(json.dumps(self.history_, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> KerasText:
        import_tensorflow()
        import keras

        directory = Path(directory)
        self = load_state(cls, directory)
        check_keras_archive(directory / MODEL_FILE)
        self.model_ = keras.saving.load_model(directory / MODEL_FILE, safe_mode=True)
        self.history_ = read_checked(directory / HISTORY_FILE)
        return self

    def plot_history(self, path: str | Path) -> Path:
        """Draw loss and accuracy per epoch (training and validation) to a PNG file."""
        from engine.report.figures import training_curves

        png = training_curves({f"keras-text ({self.architecture})": self.history_})
        Path(path).write_bytes(png)
        return Path(path)


@hookimpl
def register_plugins(register):
    register(KerasText)
