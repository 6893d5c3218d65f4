import json

import numpy as np
import pytest

from engine import Ensemble, load
from engine.errors import EnsembleError, ModelDirectoryError
from engine.registry import get_registry
from plugins.tfidf_nb import TfidfNB


@pytest.fixture(scope="module")
def fitted(small_tweets):
    ens = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking", cv=3,
                   random_state=0)
    return ens.fit(small_tweets, small_tweets["target"])


@pytest.fixture
def saved(fitted, tmp_path):
    return fitted.save(tmp_path / "model") and tmp_path / "model"


def test_round_trip_predicts_identically(fitted, saved, small_tweets):
    loaded = load(saved)
    assert np.array_equal(loaded.predict_proba(small_tweets), fitted.predict_proba(small_tweets))
    assert loaded.classes_.tolist() == [0, 1]
    assert np.array_equal(loaded.oof_, fitted.oof_)
    # recombine works on a loaded model: the out-of-fold probabilities travelled with it
    assert loaded.recombine("mean").scores_["ensemble"]["accuracy"] > 0.6


def test_manifest_records_what_a_user_needs(saved, small_tweets):
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["engine_version"] == "0.1.0"
    assert manifest["classes"] == {"dtype": "i", "values": [0, 1]}
    nb = manifest["members"][0]
    assert (nb["name"], nb["plugin"], nb["package"]) == ("nb", "tfidf-nb", "ensemble-engine")
    assert nb["config"]["alpha"] == 1.0
    assert manifest["combiner"]["name"] == "stacking"
    assert manifest["training"]["n_rows"] == len(small_tweets)
    assert len(manifest["training"]["sha256"]) == 64
    assert 0.6 < manifest["scores"]["ensemble"]["accuracy"] < 1
    files = manifest["files"]
    assert "members/nb/params.json" in files and "oof.npz" in files
    assert all(len(digest) == 64 for digest in files.values())


def test_changed_byte_is_detected_and_named(saved):
    target = saved / "members" / "nb" / "params.json"
    target.write_text(target.read_text().replace("1.0", "2.0", 1))
    with pytest.raises(ModelDirectoryError, match=r"members/nb/params.json.*changed"):
        load(saved)


def test_missing_plugin_names_its_package(saved):
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["members"][0].update(plugin="char-svm", package="ensemble-char-svm",
                                  version="0.1.0")
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelDirectoryError, match="pip install ensemble-char-svm"):
        load(saved)


@pytest.mark.parametrize("entry", ["../outside", "/etc", "members/../../x"])
def test_manifest_pointing_outside_is_refused(saved, entry):
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["members"][0]["directory"] = entry
    manifest["files"][entry] = "0" * 64
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelDirectoryError, match="outside the model directory"):
        load(saved)


def test_symlinked_member_file_is_refused(saved, tmp_path):
    target = saved / "members" / "nb" / "params.json"
    (tmp_path / "elsewhere.json").write_text(target.read_text())
    target.unlink()
    target.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ModelDirectoryError, match="symbolic link"):
        load(saved)


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "manifest.json").unlink(), "no manifest.json"),
    (lambda p: (p / "manifest.json").write_text("{"), "not valid JSON"),
    (lambda p: (p / "oof.npz").unlink(), "'oof.npz' is missing"),
])
def test_broken_directories_get_clear_errors(saved, damage, message):
    damage(saved)
    with pytest.raises(ModelDirectoryError, match=message):
        load(saved)


def test_missing_directory(tmp_path):
    with pytest.raises(ModelDirectoryError, match="ensemble fit"):
        load(tmp_path / "nothing")


def test_failed_save_keeps_the_previous_model(fitted, saved, small_tweets, monkeypatch):
    before = (saved / "manifest.json").read_text()

    def explode(self, directory):
        raise OSError("disk full")

    monkeypatch.setattr(TfidfNB, "save", explode)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(saved)
    assert (saved / "manifest.json").read_text() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [".model.lock", "model"]  # no temp
    monkeypatch.undo()
    assert load(saved).predict(small_tweets.head(3)).shape == (3,)


def test_save_refuses_to_replace_a_non_model_directory(fitted, tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("years of work")
    with pytest.raises(ModelDirectoryError, match="not an ensemble-engine model directory"):
        fitted.save(tmp_path / "precious")
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "years of work"


def test_unregistered_plugin_cannot_be_saved(binary_texts, tmp_path):
    class Local(TfidfNB):
        name = "local-unregistered"

    X, y = binary_texts
    ens = Ensemble({"x": Local()}, cv=3).fit(X, y)
    with pytest.raises(ModelDirectoryError, match="not registered"):
        ens.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert "local-unregistered" not in get_registry().plugins()


def test_string_and_bool_labels_survive_the_round_trip(binary_texts, tmp_path):
    X, y = binary_texts
    for labels in (np.array(["calm", "disaster"], dtype=object)[y], y.astype(bool)):
        ens = Ensemble({"nb": "tfidf-nb"}, cv=3).fit(X, labels)
        loaded = load(ens.save(tmp_path / str(labels.dtype)) and tmp_path / str(labels.dtype))
        assert loaded.predict(X).tolist() == ens.predict(X).tolist()


def test_save_deletes_only_what_a_save_created(fitted, saved):
    root = saved.parent
    users = [root / ".model.old-backup", root / ".model.tmp-notes",
             root / ".model.tmp-0123456789abcdef"]  # look-alikes without a save's marker
    for folder in users:
        folder.mkdir()
        (folder / "thesis.tex").write_text("years of work")
    dead = "fedcba9876543210"  # a killed save: its marker (lock free) and its temporary
    (root / f".model.save-{dead}").write_text("")
    (root / f".model.tmp-{dead}").mkdir()
    (root / f".model.tmp-{dead}" / "half.npz").write_text("")
    fitted.save(saved)
    for folder in users:
        assert (folder / "thesis.tex").read_text() == "years of work"
    assert not (root / f".model.tmp-{dead}").exists()
    assert not (root / f".model.save-{dead}").exists()
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [".model.lock", "model", *(f.name for f in users)])


def test_save_onto_a_symlink_is_refused_and_leaves_no_temporary(fitted, saved, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(saved)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(EnsembleError, match="symbolic link"):
        fitted.save(link)
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == before
