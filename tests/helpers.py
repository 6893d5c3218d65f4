"""Objects the tests name by import string, and builders several test files share."""

from pathlib import Path

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

NB_AND_LR = {"nb": {"plugin": "tfidf-nb"}, "lr": {"plugin": "tfidf-lr"}}


def write_config(path: Path, train: Path, *, name: str = "tweets", members: dict | None = None,
                 data: dict | None = None, ensemble: dict | None = None,
                 header: str = "") -> Path:
    """A config file for ``train`` (text, target): stacking on 3 folds of NB and LR by default.

    ``data``, ``ensemble`` and ``members`` entries are merged over the defaults;
    ``header`` goes first, verbatim (a comment a user wrote, say).
    """
    from engine.tuning.toml_out import dumps

    config = {"name": name,
              "data": {"train": Path(train).as_posix(), "text": "text", "label": "target",
                       **(data or {})},
              "ensemble": {"combiner": "stacking", "cv": 3, "random_state": 0,
                           **(ensemble or {})},
              "members": {**NB_AND_LR, **(members or {})}}
    path.write_text(header + dumps(config))
    return path


def count_lr_pipeline():
    return make_pipeline(CountVectorizer(), LogisticRegression())


def build_savedmodel(path: Path, dim: int = 512) -> Path:
    """A tiny TF Hub-style module: a batch of strings -> (n, dim) float32."""
    import tensorflow as tf

    class Encoder(tf.Module):
        def __init__(self):
            self.table = tf.Variable(tf.random.stateless_normal([500, dim], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            ids = tf.strings.to_hash_bucket_fast(tf.strings.split(tf.strings.lower(texts)), 500)
            summed = tf.reduce_sum(tf.gather(self.table, ids), axis=1)
            count = tf.cast(ids.row_lengths(), tf.float32)[:, None] + 1.0
            return summed / count

    tf.saved_model.save(Encoder(), str(path))
    return path


BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def render_in_browser(page_path: Path, screenshot: Path) -> dict:
    """Open a local HTML file in headless Chromium; what loaded, what errored, what it fetched."""
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    assert chromium, "chromium is not installed: apt-get install chromium (make test does)"
    errors, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => "
                               "({alt: i.alt, ok: i.complete && i.naturalWidth > 100}))")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return {"images": images, "errors": errors, "requests": requests}


class ThreadProbe:
    """A plugin that records the threads TensorFlow would use where it was fitted."""

    name = "thread-probe"

    def __init__(self, random_state=None):
        self.random_state = random_state

    def get_params(self, deep=True):
        return {"random_state": self.random_state}

    def set_params(self, **params):
        self.__dict__.update(params)
        return self

    def fit(self, X, y):
        import numpy as np

        from plugins._tensorflow import import_tensorflow

        tf = import_tensorflow()
        self.intra_threads_ = tf.config.threading.get_intra_op_parallelism_threads()
        self.n_classes_ = int(np.max(y)) + 1
        return self

    def predict_proba(self, X):
        import numpy as np

        return np.full((len(X), self.n_classes_), 1 / self.n_classes_)

    def save(self, directory):
        raise NotImplementedError


TINY_BERT = {"vocab_size": None, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
             "type_vocab_size": 2, "model_type": "bert", "architectures": ["BertModel"],
             "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
             "attention_probs_dropout_prob": 0.1, "layer_norm_eps": 1e-12, "pad_token_id": 0}


def tiny_vocabulary() -> list[str]:
    """Special tokens, then every word of engine.testing's datasets and some filler."""
    from engine.testing import FILLER, TOPICS

    words = sorted({w for topic in TOPICS for w in topic} | set(FILLER)
                   | {f"topic{k}" for k in range(3)} | {"forest", "near", "la", "ronge"})
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, ".", ",", "!", "?"]


def write_tiny_bert_hf(path: Path, seed: int = 0) -> Path:
    """A random 2-layer BERT in Hugging Face format: config.json, model.safetensors, vocab.txt."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    vocab = tiny_vocabulary()
    config = {**TINY_BERT, "vocab_size": len(vocab)}
    rng = np.random.default_rng(seed)
    h, inner = config["hidden_size"], config["intermediate_size"]

    def normal(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    tensors = {"embeddings.word_embeddings.weight": normal(len(vocab), h),
               "embeddings.position_embeddings.weight": normal(64, h),
               "embeddings.token_type_embeddings.weight": normal(2, h),
               "embeddings.LayerNorm.weight": np.ones(h, np.float32),
               "embeddings.LayerNorm.bias": np.zeros(h, np.float32),
               "pooler.dense.weight": normal(h, h), "pooler.dense.bias": np.zeros(h, np.float32)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            tensors[f"{p}{name}.weight"] = normal(h, h)
            tensors[f"{p}{name}.bias"] = np.zeros(h, np.float32)
        tensors[f"{p}intermediate.dense.weight"] = normal(inner, h)
        tensors[f"{p}intermediate.dense.bias"] = np.zeros(inner, np.float32)
        tensors[f"{p}output.dense.weight"] = normal(h, inner)
        tensors[f"{p}output.dense.bias"] = np.zeros(h, np.float32)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[f"{p}{norm}.weight"] = np.ones(h, np.float32)
            tensors[f"{p}{norm}.bias"] = np.zeros(h, np.float32)
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(config))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": True, "tokenizer_class": "BertTokenizer"}))
    return path


def write_tiny_bert_kerashub(path: Path, seed: int = 0) -> Path:
    """The same kind of tiny BERT saved as a KerasHub preset directory."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    vocab = tiny_vocabulary()
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab), num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=64)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    path.mkdir(parents=True, exist_ok=True)
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))
    return path


def text_pipeline():
    """A scikit-learn text classifier, named in configs as "tests.helpers:text_pipeline"."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
