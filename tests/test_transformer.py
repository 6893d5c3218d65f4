"""The transformer member on tiny random BERTs in Hugging Face and KerasHub formats."""

import json
import os
import sys
import threading

import numpy as np
import pytest

from engine import Ensemble, load
from engine.errors import ConfigError, ModelDirectoryError
from engine.testing import check_plugin, make_text_dataset
from tests.helpers import write_tiny_bert_hf, write_tiny_bert_kerashub

pytest.importorskip("keras_hub")

from plugins._tensorflow import bfloat16_is_fast  # noqa: E402
from plugins.transformer import Transformer  # noqa: E402
from plugins.transformer_batches import HIDDEN  # noqa: E402

FAST = {"epochs": 4, "batch_size": 8, "learning_rate": 3e-3, "warmup": 0.0,
        "validation_fraction": 0.0, "dropout": 0.0}


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory):
    return str(write_tiny_bert_hf(tmp_path_factory.mktemp("tiny-bert-hf")))


@pytest.fixture(scope="module")
def kerashub_bert(tmp_path_factory):
    return str(write_tiny_bert_kerashub(tmp_path_factory.mktemp("tiny-bert-kerashub")))


def test_conformance_full_fine_tune_from_hugging_face_files(hf_bert):
    check_plugin(Transformer, params={"preset": hf_bert, **FAST})


def test_conformance_frozen_lower_layers_from_kerashub_preset(kerashub_bert):
    check_plugin(Transformer, params={"preset": kerashub_bert, "trainable_layers": 1,
                                      "pooling": "cls", **FAST, "epochs": 10,
                                      "learning_rate": 5e-3})


def test_frozen_layers_are_computed_once_per_text_and_stay_unchanged(hf_bert):
    X, y = make_text_dataset(2, n_per_class=20, seed=3)
    HIDDEN.clear()
    member = Transformer(hf_bert, trainable_layers=1, random_state=0, **FAST).fit(X, y)
    cached = len(HIDDEN._entries)
    assert cached == len(set(X))
    frozen_before = [w.copy() for w in member.model_.get_layer("frozen_lower").get_weights()]
    again = Transformer(hf_bert, trainable_layers=1, random_state=1, **FAST).fit(X[:20], y[:20])
    assert len(HIDDEN._entries) == cached  # the second fit reused every text's frozen states
    assert all(np.array_equal(a, b) for a, b in zip(
        frozen_before, again.model_.get_layer("frozen_lower").get_weights(), strict=True))


def test_early_stopping_keeps_the_best_epoch(hf_bert):
    X, y = make_text_dataset(2, n_per_class=30, seed=4)
    member = Transformer(hf_bert, **{**FAST, "epochs": 6, "validation_fraction": 0.3,
                                     "patience": 1}, random_state=0).fit(X, y)
    losses = member.history_["val_loss"]
    assert member.best_epoch_ == int(np.argmin(losses)) + 1
    assert len(losses) <= 6


@pytest.fixture(scope="module")
def fitted(hf_bert):
    X, y = make_text_dataset(2, n_per_class=20, seed=5)
    return Transformer(hf_bert, random_state=0, **FAST).fit(X, y), X


def test_bfloat16_prediction_agrees_with_float32(fitted):
    member, X = fitted
    full = member.predict_proba(X)
    try:
        member.set_params(predict_dtype="bfloat16")
        if bfloat16_is_fast():
            half = member.predict_proba(X)
        else:  # emulated bf16 is ~6x slower: the user is told which setting avoids it
            with pytest.warns(RuntimeWarning, match="emulated on this machine.*'auto'"):
                half = member.predict_proba(X)
        member.set_params(predict_dtype="auto")
        auto = member.predict_proba(X)
    finally:
        member.set_params(predict_dtype="float32")
    assert np.allclose(full, half, atol=0.05)
    assert (full.argmax(1) == half.argmax(1)).mean() >= 0.95
    assert np.array_equal(auto, half if bfloat16_is_fast() else full)


@pytest.mark.parametrize("trainable_layers", [None, 1])
def test_mixed_precision_training_learns_and_leaves_a_float32_model(hf_bert, tmp_path,
                                                                   trainable_layers):
    X, y = make_text_dataset(2, n_per_class=20, seed=6)
    params = {**FAST, "epochs": 8, "trainable_layers": trainable_layers, "random_state": 0}
    full = Transformer(hf_bert, **params).fit(X, y)
    cached = len(HIDDEN._entries)
    member = Transformer(hf_bert, train_dtype="bfloat16", **params)
    if bfloat16_is_fast():
        member.fit(X, y)
    else:
        with pytest.warns(RuntimeWarning, match="train_dtype='bfloat16' is emulated.*'auto'"):
            member.fit(X, y)
    assert len(HIDDEN._entries) == cached  # frozen states run in float32: shared, not redone
    assert member.model_.dtype_policy.name == "float32"
    proba = member.predict_proba(X)
    assert (proba.argmax(1) == y).mean() >= (full.predict_proba(X).argmax(1) == y).mean() - 0.1
    member.save(tmp_path)
    assert np.array_equal(Transformer.load(tmp_path).predict_proba(X), proba)


@pytest.mark.parametrize("trainable_layers", [None, 1])
def test_saved_weights_hold_no_optimizer_state(hf_bert, tmp_path, trainable_layers):
    h5py = pytest.importorskip("h5py")
    X, y = make_text_dataset(2, n_per_class=10, seed=7)
    member = Transformer(hf_bert, **{**FAST, "epochs": 1, "trainable_layers": trainable_layers})
    member.fit(X, y).save(tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as weights:
        names: list[str] = []
        weights.visit(names.append)
    assert not [n for n in names if "optimizer" in n]  # AdamW's moments: 2x the trained size
    parameters = sum(w.nbytes for w in member.model_.get_weights())
    assert (tmp_path / "model.weights.h5").stat().st_size < 1.2 * parameters + 200_000


def test_first_layers_only_keep_their_pretrained_weights_and_round_trip(hf_bert, tmp_path):
    X, y = make_text_dataset(2, n_per_class=10, seed=8)
    params = {**FAST, "epochs": 1, "trainable_layers": 0}  # every kept layer frozen
    whole = Transformer(hf_bert, **params).fit(X, y)
    first = Transformer(hf_bert, num_layers=1, **params).fit(X, y)
    pretrained = {v.path: np.asarray(v) for v in whole.model_.get_layer("frozen_lower").weights}
    kept = {v.path: np.asarray(v) for v in first.model_.get_layer("frozen_lower").weights}
    assert kept and not [p for p in kept if p.startswith("transformer_layer_1/")]
    assert all(np.array_equal(w, pretrained[p]) for p, w in kept.items())
    for name, member in (("first", first), ("whole", whole)):
        (tmp_path / name).mkdir()
        member.save(tmp_path / name)
    assert (tmp_path / "first" / "model.weights.h5").stat().st_size < \
        (tmp_path / "whole" / "model.weights.h5").stat().st_size
    again = Transformer.load(tmp_path / "first")
    assert again.backbone_config_["num_layers"] == 1
    assert np.array_equal(again.predict_proba(X), first.predict_proba(X))


def test_clean_text_reads_links_and_mangled_punctuation_as_words_and_is_saved(hf_bert,
                                                                             tmp_path):
    X, y = make_text_dataset(2, n_per_class=10, seed=9)
    member = Transformer(hf_bert, clean_text=True, **{**FAST, "epochs": 1}).fit(X, y)
    raw = ["fire near the school http://t.co/wDUEaj8Q4J &amp; smoke",
           "They can\x89Ûªt stop the flood \x89ÛÒ"]
    cleaned = ["fire near the school http & smoke", "They can't stop the flood -"]
    assert [len(i) for i in member._ids(raw)] == [len(i) for i in member._ids(cleaned)]
    assert np.array_equal(member.predict_proba(raw), member.predict_proba(cleaned))
    member.save(tmp_path)
    again = Transformer.load(tmp_path)
    assert again.clean_text is True
    assert np.array_equal(again.predict_proba(raw), member.predict_proba(raw))


def test_bfloat16_is_fast_agrees_with_numpys_cpu_detection():
    tf = pytest.importorskip("tensorflow")
    if sys.platform != "linux" or tf.config.list_physical_devices("GPU"):
        pytest.skip("compares /proc/cpuinfo with NumPy's CPU dispatch on a CPU-only Linux")
    from numpy._core._multiarray_umath import __cpu_features__

    assert bfloat16_is_fast() == __cpu_features__["AVX512BF16"]


def test_saved_member_holds_its_vocabulary_and_refuses_other_classes(fitted, tmp_path):
    member, _ = fitted
    member.save(tmp_path)
    assert (tmp_path / "tokenizer" / "vocabulary.txt").is_file()
    names = {p.name for p in tmp_path.rglob("*")}
    assert not names & {"model.safetensors", "config.json"}  # nothing read from the preset
    spec = json.loads((tmp_path / "backbone.json").read_text())
    spec["class"] = "GemmaBackbone"
    (tmp_path / "backbone.json").write_text(json.dumps(spec))
    with pytest.raises(ModelDirectoryError, match="backbone.json is not valid at class"):
        Transformer.load(tmp_path)


@pytest.mark.parametrize("params, message", [
    ({"pooling": "max"}, "pooling must be one of mean, cls"),
    ({"trainable_layers": -1}, "trainable_layers must be None or an integer >= 0"),
    ({"num_layers": 0}, "num_layers must be None or a positive integer"),
    ({"num_layers": 3}, "num_layers=3 but the preset has 2 encoder layers; use at most 2"),
    ({"predict_dtype": "float16"}, "predict_dtype must be one of"),
    ({"train_dtype": "mixed_float16"}, "train_dtype must be one of"),
    ({"learning_rate": 0}, "learning_rate must be a finite number > 0"),
    ({"max_length": 2}, "max_length must be at least 3"),
    ({"clean_text": "yes"}, "clean_text must be a bool, got 'yes'"),
])
def test_bad_settings_fail_before_training(hf_bert, params, message):
    X, y = make_text_dataset(2, n_per_class=5)
    with pytest.raises(ConfigError, match=message):
        Transformer(hf_bert, **params).fit(X, y)


def test_unknown_preset_and_unreachable_hub_say_what_to_do(tmp_path):
    X, y = make_text_dataset(2, n_per_class=5)
    with pytest.raises(ConfigError, match="neither a local directory nor registered weights"):
        Transformer("no-such-model").fit(X, y)
    with pytest.raises(ConfigError, match="local directory"):
        Transformer(str(tmp_path)).fit(X, y)  # an empty folder is no preset


def test_ensemble_with_fewer_folds_and_fold_average_round_trips(hf_bert, tmp_path):
    X, y = make_text_dataset(2, n_per_class=20, seed=7)
    ens = Ensemble({"nb": "tfidf-nb", "bert": ("transformer", {"preset": hf_bert, **FAST})},
                   combiner="stacking", cv=3, member_cv={"bert": 2}, refit={"bert": False},
                   random_state=0).fit(X, y)
    bagged = ens.members_["bert"]
    assert bagged.name == "fold-average" and len(bagged.models_) == 2
    ens.save(tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    entry = next(m for m in manifest["members"] if m["name"] == "bert")
    assert entry["plugin"] == "fold-average" and entry["bytes"] > 0
    loaded = load(tmp_path / "model")
    assert np.array_equal(loaded.predict_proba(X), ens.predict_proba(X))
    weights = tmp_path / "model" / "members" / "bert" / "fold-1" / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelDirectoryError, match="fold-1/model.weights.h5' has changed"):
        load(tmp_path / "model")


def test_best_preset_config_builds_without_fetching_anything():
    from engine.cli import _default_demo_config
    from engine.config import load_config

    config = load_config(_default_demo_config("best"))
    ensemble = config.build_ensemble()
    assert ensemble.members["bert"][0] == "transformer"
    assert ensemble.member_cv == {"bert": 2} and ensemble.cv == 5  # best_preset*.md
    assert ensemble.members["bert"][1]["num_layers"] == 4  # best_preset_cv*.md
    # bfloat16 only where the CPU computes it natively (transformer.md: same accuracy)
    assert {k: ensemble.members["bert"][1][k] for k in ("train_dtype", "predict_dtype")} == \
        {"train_dtype": "auto", "predict_dtype": "auto"}


def test_cli_names_the_offline_fix_for_a_hub_handle(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "hub.toml").write_text(
        '[data]\ntrain = "train.csv"\n[ensemble]\ncv = 2\n'
        '[members.bert]\nplugin = "transformer"\npreset = "hf://org/model"\n')
    X, y = make_text_dataset(2, n_per_class=6)
    (tmp_path / "train.csv").write_text("text,target\n" + "".join(
        f"{t},{c}\n" for t, c in zip(X, y, strict=True)))
    done = subprocess.run([sys.executable, "-m", "engine.cli", "-q", "fit", "hub.toml", "-o",
                           "model"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot load transformer preset 'hf://org/model'")
    assert "copy the model to a local directory" in last
    assert not (tmp_path / "model").exists()


def edit_member_json(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("change, message", [
    ({"clean_text": "yes"}, "clean_text must be a bool, got 'yes'"),
    ({"pooling": "max"}, "unknown pooling 'max' .did you mean 'mean'.."),
    ({"max_length": -5}, "max_length must be a positive integer"),
])
def test_parameters_fit_would_refuse_are_refused_at_load(fitted, tmp_path, change, message):
    member, _ = fitted
    member.save(tmp_path)
    edit_member_json(tmp_path / "params.json", lambda d: d.update(change))
    with pytest.raises(ModelDirectoryError, match=f"params.json: {message}.*; refusing to load$"):
        Transformer.load(tmp_path)


def test_a_hostile_member_directory_names_no_file_and_poisons_no_cache(fitted, tmp_path):
    member, X = fitted
    member.save(tmp_path)
    expected = member.predict_proba(X)
    # A vocabulary "path" in the tokenizer config is never opened: a writer waiting on a
    # FIFO there would see a reader arrive.
    fifo = tmp_path.parent / f"{tmp_path.name}-fifo"
    os.mkfifo(fifo)
    opened = threading.Thread(target=lambda: open(fifo, "w").close(), daemon=True)
    opened.start()
    edit_member_json(tmp_path / "tokenizer.json",
                     lambda d: d["config"].update(vocabulary=str(fifo)))
    # A claimed cache identity (another model's) is replaced by the one computed at load.
    edit_member_json(tmp_path / "state.json",
                     lambda d: d.update(tokenizer_identity_="another-models-tokenizer"))
    loaded = Transformer.load(tmp_path)
    opened.join(0.5)
    was_opened = not opened.is_alive()
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # release the waiting writer
    assert not was_opened, "loading opened the path in tokenizer.json"
    assert loaded.tokenizer_identity_ != "another-models-tokenizer"
    assert loaded.tokenizer_identity_ == Transformer.load(tmp_path).tokenizer_identity_
    assert np.array_equal(loaded.predict_proba(X), expected)


@pytest.mark.parametrize("file, change, message", [
    ("state.json", lambda d: d.update(n_classes_=20_000_000), "n_classes_"),
    ("backbone.json", lambda d: d["config"].update(bucket_size=10**7), "asks for about"),
    ("backbone.json", lambda d: d["config"].update(rotary_max_wavelength=10**9),
     "rotary_max_wavelength"),
    ("backbone.json", lambda d: d["config"].update(intermediate_dim=2**20),
     "asks for about"),
    ("state.json", lambda d: d.update(frozen_layers_=99), "freezes 99"),
])
def test_sizes_a_hostile_member_asks_for_must_be_backed_by_its_weights(
        fitted, tmp_path, file, change, message):
    member, _ = fitted
    member.save(tmp_path)
    edit_member_json(tmp_path / file, change)
    with pytest.raises(ModelDirectoryError, match=message):
        Transformer.load(tmp_path)


def test_a_vocabulary_file_larger_than_the_embedding_is_refused(fitted, tmp_path):
    member, _ = fitted
    member.save(tmp_path)
    with open(tmp_path / "tokenizer" / "vocabulary.txt", "a") as handle:
        handle.write("".join(f"token{i}\n" for i in range(400_000)))
    with pytest.raises(ModelDirectoryError, match=r"vocabulary.txt' is [\d,]+ bytes, over"):
        Transformer.load(tmp_path)
