import numpy as np
import pytest

from engine import Ensemble, load
from engine.errors import ConfigError
from engine.testing import check_plugin, make_text_dataset
from plugins.keras_text import ARCHITECTURES, KerasText

SMALL = {"epochs": 10, "learning_rate": 0.01, "max_tokens": 200, "embedding_dim": 16,
         "units": 8, "batch_size": 16}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_passes_the_kit_binary_and_multiclass(architecture):
    check_plugin(KerasText, params={"architecture": architecture, **SMALL})


@pytest.mark.parametrize("params, message", [
    ({"architecture": "lstn"}, "unknown architecture 'lstn' .did you mean 'lstm'"),
    ({"sequence_length": 0}, r"sequence_length must be in \[1, 4096\]"),
    ({"units": -4}, r"units must be in \[1, 4096\]"),
    ({"embedding_dim": 2.5}, r"embedding_dim must be in \[1, 1024\], got 2.5"),
    ({"embedding_dim": 10**9}, r"embedding_dim must be in \[1, 1024\], got 1000000000"),
    ({"max_tokens": 2**20, "embedding_dim": 1024}, "over the bound of 134,217,728"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"early_stopping": True}, "needs validation_split"),
    ({"class_weight": "heavy"}, "class_weight"),
])
def test_bad_config_fails_before_training(params, message, monkeypatch):
    monkeypatch.setattr(KerasText, "_build", lambda *a: pytest.fail("training started"))
    X, y = make_text_dataset(2)
    with pytest.raises(ConfigError, match=message):
        KerasText(**params).fit(X, y)


def test_long_empty_and_unknown_texts_and_a_small_vocabulary():
    X, y = make_text_dataset(2)
    model = KerasText("conv1d", max_tokens=5000, sequence_length=8, **{
        k: v for k, v in SMALL.items() if k != "max_tokens"}).fit(X, y)
    assert model.model_.layers[1].vocabulary_size() < 5000  # fewer words than asked: fine
    proba = model.predict_proba(["fire " * 10_000, "", "zzz unseen qqq"])
    assert proba.shape == (3, 2) and np.isfinite(proba).all()


def test_predicting_skips_the_per_call_loop_of_keras_predict(monkeypatch):
    """``model.predict`` costs about 0.1 s per call (a dataset, an iterator, callbacks): most
    of a served request of 32 texts. Chunks of any size give what it gives."""
    import tensorflow as tf

    import plugins.keras_text as keras_text

    X, y = make_text_dataset(2)
    model = KerasText("dense", **SMALL).fit(X, y)
    texts = [X[i % len(X)] + f" {i}" for i in range(50)]
    expected = model.model_.predict(tf.constant(texts)[:, None], verbose=0)
    monkeypatch.setattr(model.model_, "predict", lambda *a, **k: pytest.fail("predict loop"))
    monkeypatch.setattr(keras_text, "PREDICT_CHUNK", 7)  # with batch_size 16: chunks of 16
    for n in (1, 16, 17, 50):  # one chunk, exactly one, one and a row, several and a part
        proba = model.predict_proba(texts[:n])
        np.testing.assert_allclose(proba[:, 1], expected[:n, 0], rtol=1e-6)


def test_early_stopping_restores_the_best_epoch():
    X, y = make_text_dataset(2, n_per_class=60)
    rng = np.random.default_rng(0)
    y = np.where(rng.random(len(y)) < 0.35, 1 - y, y)  # noisy labels: it will overfit
    model = KerasText("dense", validation_split=0.3, early_stopping=True, patience=1,
                      epochs=60, learning_rate=0.05, random_state=0).fit(X, y)
    losses = model.history_["val_loss"]
    assert len(losses) < 60  # stopped early
    best = int(np.argmin(losses))
    assert best == len(losses) - 2  # patience 1: one worse epoch after the best, then stop
    assert "val_accuracy" in model.history_
    # The kept weights are the best epoch's: re-evaluating gives the best loss, not the last.
    import tensorflow as tf

    split = int(len(X) * 0.7)
    loss = model.model_.evaluate(tf.constant(X[split:])[:, None], y[split:].astype("float32"),
                                 verbose=0)[0]
    assert loss == pytest.approx(losses[best], rel=1e-3)
    assert loss != pytest.approx(losses[-1], rel=1e-3)


def test_history_is_kept_and_drawn(tmp_path):
    X, y = make_text_dataset(2)
    model = KerasText("gru", validation_split=0.2, **SMALL, random_state=0).fit(X, y)
    ens_dir = tmp_path / "m"
    Ensemble({"gru": model}, cv=2, random_state=0).fit(X, y).save(ens_dir)
    loaded = load(ens_dir).members_["gru"]
    assert len(loaded.history_["loss"]) == SMALL["epochs"]
    png = loaded.plot_history(tmp_path / "history.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_silent_unless_verbose(capfd):
    X, y = make_text_dataset(2)
    KerasText("dense", epochs=2, random_state=0).fit(X, y).predict_proba(X)
    assert "Epoch" not in capfd.readouterr().out
    KerasText("dense", epochs=2, verbose=2, random_state=0).fit(X, y)
    assert "Epoch 2/2" in capfd.readouterr().out


def test_class_weight_balanced_shifts_predictions_to_the_rare_class():
    X, y = make_text_dataset(2, n_per_class=60)
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:10]]
    X, y = [X[i] for i in keep], y[keep]
    plain = KerasText("dense", epochs=3, random_state=0).fit(X, y).predict_proba(X)[:, 1]
    weighted = KerasText("dense", epochs=3, class_weight="balanced",
                         random_state=0).fit(X, y).predict_proba(X)[:, 1]
    assert weighted.mean() > plain.mean()
