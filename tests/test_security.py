"""A model directory from a stranger: loading it never runs its code or writes anything."""

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from engine import Ensemble, load
from engine.errors import ModelDirectoryError

SENTINEL = Path(os.environ.get("TMPDIR", "/tmp")) / "ensemble-engine-pwned"


class Payload:
    """Pickling this writes SENTINEL on load: what a malicious model file does."""

    def __reduce__(self):
        return (exec, (f"open({str(SENTINEL)!r}, 'w').write('pwned')",))


class Evil:
    """A class that would run code when skops rebuilds it."""

    def __setstate__(self, state):
        Path(SENTINEL).write_text("pwned")


@pytest.fixture(scope="module")
def model(tmp_path_factory, small_tweets):
    path = tmp_path_factory.mktemp("trusted") / "model"
    members = {"nb": "tfidf-nb", "dense": ("keras-text", {"architecture": "dense", "epochs": 1})}
    Ensemble(members, cv=2, random_state=0).fit(small_tweets, small_tweets["target"]).save(path)
    return path


@pytest.fixture
def copy(model, tmp_path):
    import shutil

    SENTINEL.unlink(missing_ok=True)
    target = tmp_path / "shared-model"
    shutil.copytree(model, target)
    yield target
    assert not SENTINEL.exists(), "code from the model directory ran"


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(path.rglob("*"))}


def rehash(path: Path, *, add: str | None = None) -> None:
    """Make the manifest's sha256 entries match the (tampered) files, as an attacker would."""
    manifest = json.loads((path / "manifest.json").read_text())
    for relative in [*manifest["files"], *([add] if add else [])]:
        manifest["files"][relative] = hashlib.sha256((path / relative).read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def refused(path: Path, message: str) -> None:
    before = snapshot(path)
    with pytest.raises(ModelDirectoryError, match=message):
        load(path)
    assert snapshot(path) == before, "loading changed the model directory"


def test_payload_really_would_run_if_unpickled(tmp_path):
    """The payload is live: the refusals below are what stops it."""
    SENTINEL.unlink(missing_ok=True)
    pickle.loads(pickle.dumps(Payload()))
    assert SENTINEL.exists()
    SENTINEL.unlink()


def test_pickle_in_place_of_the_array_file_is_refused(copy):
    (copy / "oof.npz").write_bytes(pickle.dumps(Payload()))
    rehash(copy)
    refused(copy, "'oof.npz' is a pickle")


def test_object_array_inside_npz_is_refused(copy):
    np.savez(copy / "oof.npz", oof=np.array([Payload()], dtype=object),
             y_codes=np.zeros(3, dtype=np.int64))
    rehash(copy)
    refused(copy, "object array|pickled data")


def test_pickle_in_place_of_a_skops_file_is_refused(copy):
    target = next((copy / "members" / "nb").rglob("*.skops"))
    target.write_bytes(pickle.dumps(Payload()))
    rehash(copy)
    refused(copy, "is a pickle")


def test_skops_file_with_an_untrusted_type_is_refused(copy):
    target = next((copy / "members" / "nb").rglob("*.skops"))
    sio.dump({"estimator": Evil()}, target)
    rehash(copy)
    refused(copy, "not trusted by default: .*Evil")


def test_extra_pickle_file_is_refused_not_ignored(copy):
    (copy / "members" / "nb" / "model.pkl").write_bytes(pickle.dumps(Payload()))
    refused(copy, "unexpected file 'members/nb/model.pkl'")
    rehash(copy, add="members/nb/model.pkl")  # listed in the manifest too: still refused
    refused(copy, "'members/nb/model.pkl' is a pickle")


def test_unlisted_file_is_refused(copy):
    (copy / "members" / "nb" / "fitted").mkdir(exist_ok=True)
    (copy / "members" / "nb" / "fitted" / "extra.skops").write_bytes(b"PK")
    refused(copy, "unexpected file 'members/nb/fitted/extra.skops'")


def test_keras_lambda_layer_is_refused_by_safe_mode(copy):
    import keras

    inputs = keras.Input(shape=(1,), dtype="string")
    outputs = keras.layers.Lambda(lambda x: keras.ops.zeros((1, 2)))(inputs)
    keras.Model(inputs, outputs).save(copy / "members" / "dense" / "model.keras")
    rehash(copy)
    refused(copy, "(?i)lambda|unsafe|safe_mode")


@pytest.mark.parametrize("entry", ["../escape", "/etc", "members/../../escape"])
def test_path_traversal_member_name_is_refused(copy, entry):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["members"][0]["directory"] = entry
    (copy / "manifest.json").write_text(json.dumps(manifest))
    refused(copy, "outside the model directory")


def test_symlink_to_a_file_outside_is_refused(copy, tmp_path):
    target = copy / "members" / "nb" / "params.json"
    outside = tmp_path / "outside.json"
    outside.write_text(target.read_text())
    target.unlink()
    target.symlink_to(outside)
    refused(copy, "symbolic link")


def test_symlinked_member_directory_is_refused(copy, tmp_path):
    import shutil

    shutil.move(copy / "members" / "nb", tmp_path / "nb-elsewhere")
    (copy / "members" / "nb").symlink_to(tmp_path / "nb-elsewhere")
    refused(copy, "symbolic link")


def test_every_changed_byte_in_every_file_is_named(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    assert {"members/nb/params.json", "members/dense/model.keras", "oof.npz"} <= set(
        manifest["files"])
    for relative in manifest["files"]:
        path = copy / relative
        original = path.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x01
        path.write_bytes(bytes(changed))
        with pytest.raises(ModelDirectoryError, match=f"'{relative}' has changed"):
            load(copy)
        path.write_bytes(original)
    assert load(copy).predict(["forest fire"]).shape == (1,)
