"""Streaming prediction, parallel fits, and Dask: same answers, bounded memory."""

import numpy as np
import pandas as pd
import pytest

from engine import Ensemble, load
from engine.cli import main
from engine.errors import ConfigError
from tests.helpers import ThreadProbe

MEMBERS = {"nb": "tfidf-nb", "lr": ("tfidf-lr", {"min_df": 1})}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, small_tweets):
    root = tmp_path_factory.mktemp("scale")
    train, test = small_tweets.iloc[:450], small_tweets.iloc[450:]
    ens = Ensemble(MEMBERS, combiner="stacking", cv=3, random_state=0).fit(train,
                                                                           train["target"])
    ens.save(root / "model", {"text": "text", "id": "id"})
    test.drop(columns="target").to_csv(root / "test.csv", index=False)
    test[["id"]].assign(target=0).to_csv(root / "sample.csv", index=False)
    return root, ens, train


def test_chunked_predict_writes_the_same_file_as_one_chunk(saved):
    root, _, _ = saved
    for size in (7, 100_000):
        assert main(["predict", str(root / "model"), str(root / "test.csv"), "-o",
                     str(root / f"p{size}.csv"), "--chunk-size", str(size)]) == 0
    assert (root / "p7.csv").read_bytes() == (root / "p100000.csv").read_bytes()
    assert len(pd.read_csv(root / "p7.csv")) == 150


def test_chunked_submit_matches_the_sample(saved):
    root, _, _ = saved
    assert main(["submit", str(root / "model"), str(root / "test.csv"), "--sample",
                 str(root / "sample.csv"), "-o", str(root / "s.csv"), "--chunk-size", "11"]) == 0
    assert pd.read_csv(root / "s.csv")["id"].tolist() == pd.read_csv(root / "sample.csv")[
        "id"].tolist()


def test_a_bad_chunk_late_in_the_file_leaves_no_output(saved, tmp_path, capsys):
    root, _, _ = saved
    good = (root / "test.csv").read_bytes()
    (tmp_path / "bad.csv").write_bytes(good + b'999999,,,"\xff broken"\n')
    assert main(["predict", str(root / "model"), str(tmp_path / "bad.csv"), "-o",
                 str(tmp_path / "out.csv"), "--chunk-size", "10"]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.csv"]


def test_parallel_fit_gives_the_same_probabilities(small_tweets):
    X, y = small_tweets, small_tweets["target"]
    one = Ensemble(MEMBERS, combiner="stacking", cv=3, random_state=0).fit(X, y)
    two = Ensemble(MEMBERS, combiner="stacking", cv=3, random_state=0, n_jobs=2).fit(X, y)
    # equal up to the last bits that BLAS thread counts may change
    np.testing.assert_allclose(one.oof_, two.oof_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one.predict_proba(X), two.predict_proba(X), rtol=0, atol=1e-12)


def test_parallel_workers_limit_tensorflow_threads(binary_texts):
    import os

    X, y = binary_texts
    ens = Ensemble({"probe": ThreadProbe()}, cv=2, n_jobs=2, backend="loky").fit(X, y)
    assert ens.members_["probe"].intra_threads_ == max(1, (os.cpu_count() or 1) // 2)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as local:
        yield local


def test_dask_backend_gives_the_local_probabilities(cluster, small_tweets):
    X, y = small_tweets, small_tweets["target"]
    local = Ensemble(MEMBERS, combiner="stacking", cv=3, random_state=0).fit(X, y)
    remote = Ensemble(MEMBERS, combiner="stacking", cv=3, random_state=0, backend="dask",
                      scheduler=cluster.scheduler_address).fit(X, y)
    np.testing.assert_allclose(local.oof_, remote.oof_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(local.predict_proba(X), remote.predict_proba(X), rtol=0,
                               atol=1e-12)


def test_dask_dataframe_prediction_matches_local(cluster, saved):
    import dask.dataframe as dd
    from distributed import Client

    import engine.dask

    root, ens, _ = saved
    test = pd.read_csv(root / "test.csv")
    with Client(cluster):
        scored = engine.dask.predict(root / "model", dd.from_pandas(test, npartitions=3))
        result = scored.compute()
    labels, proba = load(root / "model").predict_with_proba(test)
    assert result["label"].tolist() == labels.tolist()
    np.testing.assert_allclose(result[["proba_0", "proba_1"]].to_numpy(), proba)


def test_cli_fit_on_a_dask_cluster(cluster, tmp_path, small_tweets):
    small_tweets.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "c.toml").write_text(f'[data]\ntrain = "{tmp_path / "train.csv"}"\n'
                                     f'[ensemble]\ncv = 3\nrandom_state = 0\n'
                                     f'[members.nb]\nplugin = "tfidf-nb"\n')
    assert main(["-q", "fit", str(tmp_path / "c.toml"), "-o", str(tmp_path / "m"), "--backend",
                 "dask", "--scheduler", cluster.scheduler_address]) == 0
    assert load(tmp_path / "m").predict(["forest fire"]).shape == (1,)


def test_unreachable_scheduler_is_a_clear_error(binary_texts):
    X, y = binary_texts
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        Ensemble(MEMBERS, cv=2, backend="dask", scheduler="tcp://127.0.0.1:9").fit(X, y)
    with pytest.raises(ConfigError, match="needs backend='dask'"):
        Ensemble(MEMBERS, cv=2, scheduler="tcp://127.0.0.1:9").fit(X, y)


def test_dask_keeps_unsigned_integer_classes(tmp_path, small_tweets):
    import dask.dataframe as dd

    import engine.dask

    train = small_tweets.iloc[:300]
    labels = train["target"].to_numpy().astype(np.uint8)
    Ensemble(MEMBERS, cv=3, random_state=0).fit(train, labels).save(tmp_path / "model")
    test = small_tweets.iloc[300:360].drop(columns="target")
    scored = engine.dask.predict(tmp_path / "model", dd.from_pandas(test, npartitions=2))
    assert scored["label"].dtype == np.uint64  # the metadata says what compute() gives
    result = scored.compute(scheduler="synchronous")
    assert result["label"].dtype == np.uint64
    assert result["label"].tolist() == load(tmp_path / "model").predict(test).tolist()


def test_dask_workers_verify_with_the_keys_given_to_predict(cluster, saved, tmp_path):
    import shutil

    import dask.dataframe as dd
    from distributed import Client

    import engine.dask
    from engine.io.signing import SignatureError, generate_key, sign_model

    root, ens, _ = saved
    key, public, _ = generate_key(tmp_path / "author.pem")
    shutil.copytree(root / "model", tmp_path / "model")
    sign_model(tmp_path / "model", key)
    _, stranger, _ = generate_key(tmp_path / "stranger.pem")
    frame = dd.from_pandas(pd.read_csv(root / "test.csv"), npartitions=2)
    with pytest.raises(SignatureError, match="not among the trusted keys"):
        engine.dask.predict(tmp_path / "model", frame, verify_with=stranger)  # before any work
    with Client(cluster):
        scored = engine.dask.predict(tmp_path / "model", frame, verify_with=public)
        assert len(scored.compute()) == 150
        # swapped for another, unsigned model after the call: the workers, whose own
        # environment holds no keys, still refuse it
        shutil.rmtree(tmp_path / "model")
        ens.save(tmp_path / "model", {"text": "text", "id": "id"})
        with pytest.raises(SignatureError, match="not signed and a signature is required"):
            scored.compute()
