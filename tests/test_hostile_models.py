"""Model directories an attacker wrote (and rehashed): nothing they name runs, nothing
hangs or floods memory, and every refusal is one line.

Each test is one finding of the red-team pass on loading (issue 16), rebuilt.
"""

import hashlib
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine import Ensemble, load
from engine.cli import main
from engine.errors import EnsembleError, ModelDirectoryError
from engine.io.files import MAX_JSON_BYTES

PAYLOAD = "ensemble_red_team_payload"


@pytest.fixture
def payload(tmp_path, monkeypatch):
    """An importable module that leaves a marker file when imported or called."""
    marker = tmp_path / "payload-ran"
    (tmp_path / f"{PAYLOAD}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        f"def run(*args, **kwargs):\n    open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, PAYLOAD, raising=False)
    yield marker
    assert not marker.exists() or marker.read_text() == "trusted", "the payload ran"


@pytest.fixture(scope="module")
def model(tmp_path_factory, small_tweets):
    path = tmp_path_factory.mktemp("hostile-models") / "model"
    members = {"nb": "tfidf-nb",
               "sk": ("sklearn", {"pipeline": "tests.helpers:text_pipeline"})}
    Ensemble(members, combiner="stacking", cv=2, random_state=0).fit(
        small_tweets, small_tweets["target"]).save(path)
    return path


@pytest.fixture
def copy(model, tmp_path):
    target = tmp_path / "from-a-stranger"
    shutil.copytree(model, target)
    return target


def edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def rehash(model: Path) -> None:
    """Make the manifest's hashes match the changed files, as any attacker would."""
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["files"] = {p.relative_to(model).as_posix():
                         hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in sorted(model.rglob("*"))
                         if p.is_file() and p.name != "manifest.json"}
    (model / "manifest.json").write_text(json.dumps(manifest))


def refused(model: Path, match: str, **kwargs) -> str:
    with pytest.raises(ModelDirectoryError, match=match) as info:
        load(model, **kwargs)
    message = str(info.value)
    assert "\n" not in message.strip()
    return message


# -- 1. nothing the directory names runs ----------------------------------------------


def test_refitting_a_loaded_model_never_imports_its_import_strings(copy, payload,
                                                                   small_tweets):
    edit_json(copy / "members" / "sk" / "params.json",
              lambda d: d.update(pipeline=f"{PAYLOAD}:run"))
    edit_json(copy / "combiner" / "params.json",
              lambda d: d.update(final_estimator=f"{PAYLOAD}:run"))
    rehash(copy)
    loaded = load(copy)  # loading and predicting follow nothing, so they work
    assert loaded.predict_proba(small_tweets.head(5)).shape == (5, 2)
    with pytest.raises(ModelDirectoryError, match=rf"import string '{PAYLOAD}:run'.*--trust"):
        loaded.fit(small_tweets, small_tweets["target"])
    assert not payload.exists()


def test_an_import_string_the_user_trusts_is_followed(copy, small_tweets):
    # The same refit works when the user vouches for the string the directory names.
    edit_json(copy / "members" / "sk" / "params.json",
              lambda d: d.update(pipeline="tests.helpers:text_pipeline"))
    rehash(copy)
    with pytest.raises(ModelDirectoryError, match="tests.helpers:text_pipeline"):
        load(copy).fit(small_tweets, small_tweets["target"])
    refit = load(copy, trusted=["tests.helpers:text_pipeline"]).fit(
        small_tweets, small_tweets["target"])
    assert refit.predict_proba(small_tweets.head(3)).shape == (3, 2)


def test_a_dask_scheduler_address_from_the_directory_is_never_contacted(copy, small_tweets):
    edit_json(copy / "manifest.json", lambda d: d["ensemble"].update(
        backend="dask", scheduler="tcp://203.0.113.7:8786"))
    with pytest.raises(ModelDirectoryError, match="Dask scheduler address"):
        load(copy).fit(small_tweets, small_tweets["target"])


def evil_savedmodel(path: Path, marker: Path) -> Path:
    """A TF Hub-style encoder whose graph writes a file: what a hostile SavedModel does."""
    import tensorflow as tf

    class Encoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            tf.io.write_file(str(marker), "the SavedModel's graph ran")
            return tf.zeros([tf.shape(texts)[0], 512])

    tf.saved_model.save(Encoder(), str(path))
    return path


def test_a_savedmodel_named_by_the_directory_never_runs(tmp_path, small_tweets):
    from tests.helpers import build_savedmodel

    model = tmp_path / "model"
    honest = build_savedmodel(tmp_path / "honest-use")
    Ensemble({"use": ("use", {"backend": "tfhub", "handle": str(honest), "cache": False})},
             cv=2, random_state=0).fit(small_tweets, small_tweets["target"]).save(model)
    marker = tmp_path / "graph-ran"
    for handle in (str(evil_savedmodel(tmp_path / "evil", marker)),
                   "https://attacker.invalid/use/4"):
        edit_json(model / "members" / "use" / "params.json", lambda d, h=handle: d.update(
            handle=h))
        rehash(model)
        message = refused(model, "names the TF SavedModel")
        assert f"--trust '{handle}'" in message
        assert main(["predict", str(model), str(tmp_path / "none.csv"),
                     "-o", str(tmp_path / "out.csv")]) == 2
    assert not marker.exists()
    # Named by the user, it is loaded: proof that the refusal above stopped a real attack.
    edit_json(model / "members" / "use" / "params.json",
              lambda d: d.update(handle=str(tmp_path / "evil")))
    rehash(model)
    with pytest.warns(UserWarning, match="trained on encoder"):
        load(model, trusted=[str(tmp_path / "evil")])
    assert marker.exists()


@pytest.mark.parametrize("pipeline, message", [
    ("os:getpid", "gave a int, not a scikit-learn estimator"),
    ("sys:exit", "calling 'sys:exit' to build an estimator failed"),
])
def test_config_import_strings_that_are_not_estimators_fail_in_one_line(
        tmp_path, small_tweets, capsys, pipeline, message):
    small_tweets.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "config.toml").write_text(
        f'[data]\ntrain = "{tmp_path / "train.csv"}"\ntext = "text"\nlabel = "target"\n'
        f'[members.sk]\nplugin = "sklearn"\npipeline = "{pipeline}"\n')
    assert main(["fit", str(tmp_path / "config.toml"), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m").exists()


# -- 2. validated before use: bounds on size, depth, shapes and types ----------------


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(format_version=True), "format_version: True is not of type"),
    (lambda m: m.update(format_version=-7), "format_version: -7 is less than"),
    (lambda m: m.update(members="nb"), "members: 'nb' is not of type 'array'"),
    (lambda m: m["members"][0].update(name=["x"]), "members/0/name"),
    (lambda m: m["classes"].update(values=[{"a": 1}, 2]), "classes/values/0"),
    (lambda m: m["ensemble"].update(cv=10**40), "ensemble/cv"),
    (lambda m: m["files"].update({"oof.npz": "not-a-hash"}), "files/oof.npz"),
    (lambda m: m["members"][0].update(package="x --index-url https://attacker.invalid"),
     "members/0/package"),
])
def test_manifest_fields_of_the_wrong_type_are_named(copy, change, match):
    edit_json(copy / "manifest.json", change)
    refused(copy, match)


def test_a_json_list_of_a_million_items_is_refused_before_validation(copy):
    edit_json(copy / "members" / "nb" / "state.json", lambda d: d.update(x_=[0] * 1_000_000))
    rehash(copy)
    refused(copy, "holds a list or object of 1,000,000 items")


def test_a_deeply_nested_manifest_is_refused_not_a_recursion_error(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    text = json.dumps(manifest)
    (copy / "manifest.json").write_text(text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000
                                        + "}")
    refused(copy, "nests deeper than 64 levels")


def test_an_oversized_manifest_is_refused_before_it_is_read(copy):
    with open(copy / "manifest.json", "r+b") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)  # sparse: the size alone must refuse it
    refused(copy, "over the .*-byte limit")


def test_state_names_that_would_overwrite_object_internals_are_refused(copy):
    edit_json(copy / "members" / "nb" / "state.json", lambda d: d.update(__dict__={}))
    rehash(copy)
    refused(copy, "state.json is not valid")


def npy_bytes(shape: tuple, stored: bytes) -> bytes:
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    text = repr(header).encode()
    text += b" " * (64 - (10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + stored


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_an_array_claiming_29_tib_in_200_bytes_is_refused_before_allocation(copy):
    with zipfile.ZipFile(copy / "oof.npz", "w") as archive:
        archive.writestr("oof.npy", npy_bytes((2**20, 2**20, 3), b"\0" * 64))
        archive.writestr("y_codes.npy", npy_bytes((10,), b"\0" * 80))
    rehash(copy)
    before = peak_rss_mb()
    refused(copy, r"claims shape \(1048576, 1048576, 3\)")
    assert peak_rss_mb() - before < 200


def test_a_skops_array_with_a_false_shape_is_refused(copy):
    skops = copy / "combiner" / "fitted" / "final_estimator_.skops"
    with zipfile.ZipFile(skops) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    name = next(n for n in members if n.endswith(".npy"))
    members[name] = npy_bytes((10**7, 10**5), b"\0" * 16)
    with zipfile.ZipFile(skops, "w") as archive:
        for filename, data in members.items():
            archive.writestr(filename, data)
    rehash(copy)
    refused(copy, "claims shape")


def test_a_decompression_bomb_is_refused_from_its_headers(copy):
    with zipfile.ZipFile(copy / "oof.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("oof.npy", npy_bytes((2, 100_000_000 // 16), b"\0" * 100_000_000))
        archive.writestr("y_codes.npy", npy_bytes((1,), b"\0" * 8))
    assert (copy / "oof.npz").stat().st_size < 1_000_000
    rehash(copy)
    before = peak_rss_mb()
    refused(copy, "decompression bomb")
    assert peak_rss_mb() - before < 200


def test_a_meta_learner_for_other_classes_is_refused_at_load(copy):
    import skops.io as sio

    skops = copy / "combiner" / "fitted" / "final_estimator_.skops"
    learner = sio.load(skops, trusted=sio.get_untrusted_types(file=skops))
    learner.classes_ = np.array([5, 7])
    sio.dump(learner, skops)
    rehash(copy)
    refused(copy, "not a valid model directory|inconsistent")


def test_a_backtracking_token_pattern_is_refused_unless_trusted(copy):
    import skops.io as sio

    skops = copy / "members" / "nb" / "fitted" / "pipeline_.skops"
    pipeline = sio.load(skops, trusted=sio.get_untrusted_types(file=skops))
    evil = r"(a+)+$"
    pipeline.steps[0][1].token_pattern = evil
    sio.dump(pipeline, skops)
    rehash(copy)
    refused(copy, r"token_pattern '\(a\+\)\+\$', which is not a known pattern")
    assert load(copy, trusted=[evil]).predict_proba(["a calm day"]).shape == (1, 2)


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory, small_tweets):
    path = tmp_path_factory.mktemp("keras-model") / "model"
    Ensemble({"dense": ("keras-text", {"architecture": "dense", "epochs": 1})}, cv=2,
             random_state=0).fit(small_tweets, small_tweets["target"]).save(path)
    return path


def edit_keras_config(template: Path, target: Path, change) -> Path:
    """A copy of ``template`` whose member's .keras config is changed, rehashed."""
    shutil.copytree(template, target)
    keras_file = target / "members" / "dense" / "model.keras"
    with zipfile.ZipFile(keras_file) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        change(layer)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(keras_file, "w") as archive:
        for filename, data in members.items():
            archive.writestr(filename, data)
    rehash(target)
    return target


def test_a_keras_file_asking_for_a_billion_row_embedding_is_refused(keras_model, tmp_path):
    def billion_rows(layer):
        if layer["class_name"] == "Embedding":
            layer["config"]["input_dim"] = 10**9

    model = edit_keras_config(keras_model, tmp_path / "model", billion_rows)
    before = peak_rss_mb()
    refused(model, r"asks for about [\d,]+ elements while [\d,]+ are stored")
    assert peak_rss_mb() - before < 200


@pytest.mark.parametrize("protocol", [0, 1])
@pytest.mark.parametrize("payload", [{"payload": [1, 2]}, list(range(100_000))],
                         ids=["small", "800kb"])  # past the scanned head: cut mid-opcode
def test_a_protocol_0_or_1_pickle_is_refused_by_its_opcodes(copy, protocol, payload):
    (copy / "members" / "nb" / "state.json").write_bytes(pickle.dumps(payload, protocol=protocol))
    rehash(copy)
    refused(copy, "is a pickle")


def test_a_folder_the_user_cannot_list_is_refused_not_skipped(copy, tmp_path):
    # A file hidden in an unlistable folder was loaded by name (tar keeps mode 0111):
    # an unsigned addition passed as the signed model. Root lists every folder, so the
    # load runs without the capabilities that let it, as any other user's would.
    hidden = copy / "combiner" / "hidden.json"
    hidden.write_text("{}")
    os.chmod(copy / "combiner", 0o111)
    try:
        done = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all",
             sys.executable, "-m", "engine.cli", "evaluate", str(copy)],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    finally:
        os.chmod(copy / "combiner", 0o755)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot list 'combiner'" in done.stderr and done.stderr.count("\n") == 1


def test_a_fifo_planted_as_the_lock_file_never_hangs_loading_and_stops_a_save(copy):
    os.mkfifo(copy.parent / f".{copy.name}.lock")
    loaded = []
    worker = threading.Thread(target=lambda: loaded.append(load(copy)), daemon=True)
    worker.start()
    worker.join(60)
    assert loaded, "load waited on a FIFO lock file"
    with pytest.raises(EnsembleError, match="is not a regular file"):
        loaded[0].save(copy)
    assert load(copy).predict(["a text"]).shape == (1,)


def test_thousands_of_folders_or_deep_nesting_are_refused_in_one_line(copy):
    deep = copy.joinpath(*["d"] * 40)
    deep.mkdir(parents=True)
    refused(copy, "nested deeper than 32 folders")
    shutil.rmtree(copy / "d")
    for i in range(5000):
        (copy / f"e{i}").mkdir()
    refused(copy, "over 4,096 files and folders")


def test_huge_equal_weights_still_average(small_tweets):
    ens = Ensemble({"a": "tfidf-nb", "b": "tfidf-lr"}, combiner=("mean", {"weights": [
        1e308, 1e308]}), cv=2, random_state=0).fit(small_tweets, small_tweets["target"])
    proba = ens.predict_proba(small_tweets.head(20))
    assert np.allclose(proba.sum(axis=1), 1) and proba.max() > 0.5


# -- special files: links, FIFOs, devices ----------------------------------------------


def test_a_manifest_linked_to_dev_zero_is_refused_at_once(copy):
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").symlink_to("/dev/zero")
    before = peak_rss_mb()
    refused(copy, "symbolic link")
    assert peak_rss_mb() - before < 100


@pytest.mark.parametrize("name", ["manifest.json", "members/nb/params.json",
                                  "members/nb/extra-pipe.skops"])
def test_a_fifo_in_the_model_directory_never_hangs_loading(copy, name):
    target = copy / name
    target.unlink(missing_ok=True)
    os.mkfifo(target)
    outcome = {}

    def attempt():
        try:
            load(copy)
        except EnsembleError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the reader so the test run can finish, then fail
        with open(target, "w"):
            pass
        pytest.fail(f"loading hung on a FIFO named {name}")
    assert time.monotonic() - start < 10
    assert "not a regular file" in outcome["error"]


def test_cli_refuses_a_hostile_directory_in_one_line_with_exit_2(copy, tmp_path, capsys):
    edit_json(copy / "manifest.json", lambda m: m.update(format_version=True))
    (tmp_path / "in.csv").write_text("text\nfire\n")
    code = main(["predict", str(copy), str(tmp_path / "in.csv"),
                 "-o", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "format_version" in err
    assert not (tmp_path / "out.csv").exists()


# -- found by the red-team pass on the fixes above ----------------------------------------


def replace_pipeline(model: Path, member: str, make) -> list[str]:
    import skops.io as sio

    skops = model / "members" / member / "fitted" / "pipeline_.skops"
    pipeline = sio.load(skops, trusted=sio.get_untrusted_types(file=skops))
    changed = make(pipeline)
    sio.dump(changed, skops)
    rehash(model)
    return sio.get_untrusted_types(file=skops)


def test_patterns_hidden_in_fitted_helpers_are_found(copy, small_tweets):
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV

    def calibrated(pipeline):
        wrapper = CalibratedClassifierCV(clone(pipeline), cv=2).fit(
            small_tweets["text"], small_tweets["target"])
        for inner in wrapper.calibrated_classifiers_:  # private objects, no get_params
            inner.estimator.steps[0][1].token_pattern = r"(?:[\w\s]+|[\w\s]+)+!"
        return wrapper

    types = replace_pipeline(copy, "nb", calibrated)
    refused(copy, "not a known pattern", trusted=types)


@pytest.mark.parametrize("setting, message", [
    ({"memory": "/tmp/shared-cache"}, "memory="),
    ({"tfidf__input": "filename"}, "input='filename'"),
])
def test_estimator_settings_that_open_paths_are_refused(copy, setting, message):
    replace_pipeline(copy, "nb", lambda pipeline: pipeline.set_params(**setting))
    refused(copy, message)


def test_a_cascade_order_that_would_run_forever_is_refused(tmp_path, small_tweets):
    model = tmp_path / "model"
    Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="cascade", cv=2,
             random_state=0).fit(small_tweets, small_tweets["target"]).save(model)
    # Each stage would predict every row again: 60,000 stages of one member.
    edit_json(model / "combiner" / "state.json", lambda d: d.update(order_=[0] * 60_000))
    rehash(model)
    refused(model, "order_ must list distinct members")


def test_manifest_column_settings_of_the_wrong_type_fail_in_one_line(copy, tmp_path, capsys):
    edit_json(copy / "manifest.json", lambda m: m.update(data={"text": "text", "id": ["id"]}))
    (tmp_path / "in.csv").write_text("id,text\n1,fire\n")
    assert main(["predict", str(copy), str(tmp_path / "in.csv"),
                 "-o", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "data/id" in err and len(err.splitlines()) == 1


def test_a_file_name_with_a_newline_and_escapes_is_shown_escaped(copy):
    (copy / "members" / "nb" / "x\n\x1b[2Jmodel OK").write_text("{}")
    message = refused(copy, "unexpected file")
    assert "\x1b" not in message and "\\n" in message


def test_a_keras_layer_built_wider_than_its_config_says_is_refused(keras_model, tmp_path):
    def unbuilt(layer):
        if layer["class_name"] == "Dense":
            del layer["build_config"]  # Keras would build it for whatever flows in

    model = edit_keras_config(keras_model, tmp_path / "model", unbuilt)
    refused(model, "gives a Dense layer no input width")


def test_a_use_member_falling_back_to_a_tfhub_default_needs_trust(tmp_path, small_tweets):
    model = tmp_path / "model"
    Ensemble({"use": ("use", {"cache": False})}, cv=2, random_state=0).fit(
        small_tweets.head(120), small_tweets["target"].head(120)).save(model)
    edit_json(model / "members" / "use" / "params.json", lambda d: d.update(backend="tfhub"))
    rehash(model)
    refused(model, r"encoder backend .*--trust 'tfhub'")


# -- round 3 (issue 29) ----------------------------------------------------------------


def load_in_child(model: Path, texts: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Load ``model`` and predict the probe's words and ``texts`` in a child that may crash
    alone."""
    code = ("import sys\nfrom engine import load\nfrom engine.errors import EnsembleError\n"
            "try:\n    load(sys.argv[1]).predict_proba(['fire near the river', 'a calm day',"
            " *sys.argv[2:]])\n"
            "except EnsembleError as exc:\n    print(exc)\n    sys.exit(2)\n")
    return subprocess.run([sys.executable, "-c", code, str(model), *texts],
                          capture_output=True, text=True, timeout=120)


def set_vocabulary_index(index: int):
    def change(pipeline):
        vocabulary = pipeline.steps[0][1].vocabulary_
        vocabulary["fire"] = index
        return pipeline
    return change


def count_vectorizer_pipeline(small_tweets):
    from tests.helpers import count_lr_pipeline

    return lambda _: count_lr_pipeline().fit(small_tweets["text"], small_tweets["target"])


@pytest.mark.parametrize("member, index", [("sk", 10**9), ("sk-count", 10**9),
                                           ("nb", -2000), ("nb", 0)])
def test_a_vocabulary_index_outside_the_matrix_is_refused_not_a_crash(copy, small_tweets,
                                                                      member, index):
    if member == "sk-count":  # no idf weights between the vocabulary and the product
        member = "sk"
        replace_pipeline(copy, member, count_vectorizer_pipeline(small_tweets))
    replace_pipeline(copy, member, set_vocabulary_index(index))
    done = load_in_child(copy)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])  # not -11 (SIGSEGV)
    assert done.stdout.count("\n") == 1 and "column indices are not 0.." in done.stdout


def test_idf_weights_for_another_vocabulary_size_are_refused(copy):
    def shorter(pipeline):
        tfidf = pipeline.steps[0][1]._tfidf
        tfidf.idf_ = tfidf.idf_[:5]
        return pipeline
    replace_pipeline(copy, "nb", shorter)
    refused(copy, r"\(5,\) idf weights for a vocabulary of")


def set_classes(model: Path, values: list, dtype: str = "O") -> None:
    edit_json(model / "manifest.json", lambda m: m.update(classes={"dtype": dtype,
                                                                   "values": values}))


@pytest.mark.parametrize("values", [[f"c{i}" if i % 2 else i for i in range(20_000)],
                                    [f"c{i}" for i in range(20_000)]])
def test_twenty_thousand_classes_are_checked_in_linear_time(copy, values):
    set_classes(copy, values)
    started = time.perf_counter()
    with pytest.raises(ModelDirectoryError):
        load(copy)
    assert time.perf_counter() - started < 10  # minutes before: a pairwise uniqueness check


@pytest.mark.parametrize("values, dtype, match", [
    ([1, True], "i", r"classes mix types \(bool, int\)"),
    (["1", 1], "O", r"classes mix types \(int, str\)"),
    ([0, 1, 1], "i", "more than once"),
])
def test_classes_that_would_share_an_output_column_are_refused(copy, values, dtype, match):
    set_classes(copy, values, dtype)
    refused(copy, match)


@pytest.mark.parametrize("held", ["directory", "gate"])
def test_a_lock_held_by_anyone_who_can_read_the_model_is_waited_for_within_a_bound(
        copy, monkeypatch, held):
    import fcntl

    gate = copy.parent / f".{copy.name}.lock"
    gate.touch()
    target = copy if held == "directory" else gate
    fd = os.open(target, os.O_RDONLY)  # read access is all it takes
    fcntl.flock(fd, fcntl.LOCK_EX)
    monkeypatch.setenv("ENSEMBLE_LOCK_TIMEOUT", "1")
    try:
        started = time.perf_counter()
        message = refused(copy, "stayed locked by another process for 1 s")
        assert time.perf_counter() - started < 5 and "ENSEMBLE_LOCK_TIMEOUT" in message
    finally:
        os.close(fd)
    assert load(copy).predict(["a calm day"]).shape == (1,)  # released: loads again


def test_a_lock_timeout_that_is_not_a_number_is_one_line(copy, monkeypatch):
    monkeypatch.setenv("ENSEMBLE_LOCK_TIMEOUT", "forever")
    with pytest.raises(EnsembleError, match="is not a number of seconds"):
        load(copy)


@pytest.mark.parametrize("which", ["model", "keras_model"])
def test_a_lone_surrogate_in_a_text_is_one_line_for_every_member(request, which):
    import pandas as pd

    from engine.errors import DataError

    ensemble = load(request.getfixturevalue(which))
    for texts in (["fire", "half a pair \ud800"], {"text": ["\udfff"], "keyword": [""]}):
        X = texts if isinstance(texts, list) else pd.DataFrame(texts, dtype=object)
        with pytest.raises(DataError, match=r"rows \d hold a lone surrogate") as info:
            ensemble.predict_proba(X)
        assert "\n" not in str(info.value)


def test_any_vocabulary_indices_load_and_predict_or_are_refused_never_a_crash(
        model, small_tweets, tmp_path_factory):
    """Property: whatever integers a stranger writes as vocabulary indices (a CountVectorizer
    pipeline, where no idf weights stand between them and scipy), a load in a child process
    predicts or refuses in one line; it never dies by a signal (the crash detector)."""
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = tmp_path_factory.mktemp("vocabulary-fuzz") / "model"
    shutil.copytree(model, base)
    replace_pipeline(base, "sk", count_vectorizer_pipeline(small_tweets))
    index = st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(-3, 4000))
    thorough = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"

    @settings(max_examples=40 if thorough else 2, deadline=None, derandomize=not thorough,
              database=None, suppress_health_check=list(HealthCheck))
    @given(edits=st.lists(st.tuples(st.integers(0, 10**6), index), min_size=1, max_size=4))
    def check(edits):
        with tempfile.TemporaryDirectory() as root:
            target = Path(root) / "model"
            shutil.copytree(base, target)

            edited = []

            def change(pipeline):
                vocabulary = pipeline.steps[0][1].vocabulary_
                terms = sorted(vocabulary)
                for position, value in edits:
                    edited.append(terms[position % len(terms)])
                    vocabulary[edited[-1]] = value
                return pipeline

            replace_pipeline(target, "sk", change)
            done = load_in_child(target, (" ".join(edited),))  # the edited columns are used
            assert done.returncode in (0, 2), (edits, done.returncode, done.stderr[-500:])
            assert done.returncode == 0 or done.stdout.count("\n") == 1

    check()


def test_a_twin_swapped_in_through_the_parent_folder_is_never_what_loads(tmp_path):
    """While loads run, another process exchanges the model's parent folder with one whose
    model has the same manifest (and signature) but another meta-learner. Every file a load
    opens is one of the directory it locked and verified: it predicts as the verified model,
    or is refused (when it locked the twin). 24 of 100 loads returned the twin's before."""
    from engine.io.atomic import _exchange
    from engine.testing import make_text_dataset

    X, y = make_text_dataset(2, n_per_class=20, seed=3)
    X2, y2 = make_text_dataset(2, n_per_class=20, seed=9)
    members = {"nb": "tfidf-nb", "lr": "tfidf-lr"}
    ours = Ensemble(members, combiner="stacking", cv=2, random_state=0).fit(X, y)
    other = Ensemble(members, combiner="stacking", cv=2, random_state=0).fit(X2, 1 - y2)
    ours.save(tmp_path / "p1" / "model")
    other.save(tmp_path / "other")
    shutil.copytree(tmp_path / "p1" / "model", tmp_path / "p2" / "model")
    shutil.rmtree(tmp_path / "p2" / "model" / "combiner")
    shutil.copytree(tmp_path / "other" / "combiner", tmp_path / "p2" / "model" / "combiner")
    if not _exchange(tmp_path / "p1", tmp_path / "p2"):
        pytest.skip("needs renameat2 (Linux) to swap the folders atomically")
    expected = ours.predict_proba(X[:10])
    done = threading.Event()

    def swap():
        while not done.is_set():
            _exchange(tmp_path / "p1", tmp_path / "p2")
            time.sleep(0.0005)

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    outcomes = {"verified": 0, "twin": 0, "refused": 0}
    try:
        for _ in range(100):
            try:
                proba = load(tmp_path / "p1" / "model").predict_proba(X[:10])
            except ModelDirectoryError as exc:
                assert "\n" not in str(exc) and "/proc/self/fd" not in str(exc)
                outcomes["refused"] += 1
                continue
            outcomes["verified" if np.allclose(proba, expected) else "twin"] += 1
    finally:
        done.set()
        swapper.join(5)
    assert outcomes["twin"] == 0 and outcomes["verified"] > 0, outcomes
