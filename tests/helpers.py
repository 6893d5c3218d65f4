"""Objects the tests name by import string, and builders several test files share."""

from pathlib import Path

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


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
