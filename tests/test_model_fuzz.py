"""A property-based fuzzer over every field of every JSON file in a model directory.

Each example copies a saved model, changes one field of the manifest or of a
member's or combiner's state (replaces, deletes or adds a value chosen to
hurt: huge numbers, NaN, wrong types, deep nesting, control characters,
import strings, paths and URLs), rehashes the manifest as an attacker would,
then loads the model and predicts two texts. Every outcome must be a result
or an EnsembleError: no other exception, no hang (over 10 s, or three times
the unchanged model's own load time when that is longer: the neural model
takes seconds on a busy machine), nothing the directory names imported,
nothing written. HYPOTHESIS_PROFILE=thorough runs
2,000 mutations of the classical model and 200 of the neural one
(`make reliability`); CI runs a sample.
"""

import hashlib
import json
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Ensemble, load
from engine.errors import EnsembleError

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
PAYLOAD = "ensemble_fuzz_payload"
COUNTS = {"mutations": 0, "refused": 0, "loaded": 0, "slowest": 0.0, "baseline": 0.0}
HANG_SECONDS = 10


@pytest.fixture(scope="module", autouse=True)
def payload_module(tmp_path_factory):
    """A module that leaves a marker if anything imports it."""
    root = tmp_path_factory.mktemp("payload")
    marker = root / "ran"
    (root / f"{PAYLOAD}.py").write_text(f"open({str(marker)!r}, 'w').close()\nrun = print\n")
    sys.path.insert(0, str(root))
    yield marker
    sys.path.remove(str(root))
    log = os.environ.get("ENSEMBLE_RELIABILITY_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps({
                "kind": "fuzz-model-directory", "inputs": COUNTS["mutations"],
                "refused": COUNTS["refused"], "loaded": COUNTS["loaded"],
                "slowest_seconds": round(COUNTS["slowest"], 2),
                "baseline_seconds": round(COUNTS["baseline"], 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }) + "\n")


@pytest.fixture(scope="module")
def classical(tmp_path_factory, small_tweets):
    path = tmp_path_factory.mktemp("fuzz") / "classical"
    members = {"nb": "tfidf-nb", "lr": ("tfidf-lr", {"ngram_range": (1, 2)}),
               "sk": ("sklearn", {"pipeline": "tests.helpers:text_pipeline"})}
    Ensemble(members, combiner="stacking", cv=2, random_state=0).fit(
        small_tweets, small_tweets["target"]).save(path, {"text": "text", "label": "target"})
    return path, load_seconds(path)


@pytest.fixture(scope="module")
def neural(tmp_path_factory, small_tweets):
    from tests.helpers import write_tiny_bert_kerashub

    root = tmp_path_factory.mktemp("fuzz-neural")
    bert = write_tiny_bert_kerashub(root / "tiny-bert")
    members = {
        "dense": ("keras-text", {"architecture": "dense", "epochs": 1}),
        "use": ("use", {"head": "dense", "epochs": 1}),
        "bert": ("transformer", {"preset": str(bert), "epochs": 1, "batch_size": 16,
                                 "validation_fraction": 0.0}),
    }
    Ensemble(members, combiner=("mean", {"weights": [1, 1, 1]}), cv=2, refit={
        "dense": True, "use": True, "bert": False}, random_state=0).fit(
        small_tweets.head(200), small_tweets["target"].head(200)).save(root / "model")
    return root / "model", load_seconds(root / "model")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Where mutated copies live: loading must write nothing here (or anywhere)."""
    return tmp_path_factory.mktemp("fuzz-work")


def paths_in(value, prefix=()):
    """Every path to a value inside a parsed JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:20]):
            yield from paths_in(item, (*prefix, i))


def deep(levels: int):
    value = []
    for _ in range(levels):
        value = [value]
    return value


HOSTILE = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 2**31, 2**63, -(2**63), 10**40, 1e308,
                     -1e308, float("nan"), float("inf"), 5e-324, "", "\x1b[31mred\x1b[0m",
                     "\x00", "a" * 100_000, f"{PAYLOAD}:run", "os:system", "sys:exit",
                     "/etc/passwd", "../../../outside", "/dev/zero", "https://attacker.invalid/x",
                     "tfidf-nb", "stacking", "members/nb", "members/../../x", "oof.npz",
                     "=HYPERLINK(\"http://x\")", "(a+)+$", "BertBackbone", "float64", "i", "O",
                     {"__tuple__": [1, 10**9]}, {"__class__": 1}, {"__dict__": {}},
                     [0] * 1000, deep(100), deep(60), {"a": deep(30)}]),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.lists(st.integers(-5, 10**6), max_size=5),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


def json_files(model: Path) -> list[str]:
    return sorted(p.relative_to(model).as_posix() for p in model.rglob("*.json"))


def mutate(document, path, action, value):
    if not path:
        return value if action == "replace" else document
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "replace":
        parent[key] = value
    elif action == "delete":
        del parent[key]
    elif isinstance(parent, dict):
        parent[f"{key}_extra"] = value
    else:
        parent.append(value)
    return document


def rehash(model: Path, keep_files_entry: bool) -> None:
    manifest_path = model / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError:
        return
    if not isinstance(manifest, dict) or keep_files_entry:
        return
    manifest["files"] = {p.relative_to(model).as_posix():
                         hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in sorted(model.rglob("*"))
                         if p.is_file() and p.name != "manifest.json"}
    manifest_path.write_text(json.dumps(manifest))


def tree(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*")}


def load_seconds(model: Path) -> float:
    """How long the unchanged model takes to load and predict: the yardstick for a hang."""
    start = time.monotonic()
    load(model).predict_proba(["forest fire", "calm"])
    seconds = time.monotonic() - start
    COUNTS["baseline"] = max(COUNTS["baseline"], seconds)
    return seconds


def attempt(model: Path, work: Path, data, marker: Path, baseline: float) -> None:
    target = work / f"example-{COUNTS['mutations']}"
    shutil.copytree(model, target)
    try:
        name = data.draw(st.sampled_from(json_files(target)), label="file")
        document = json.loads((target / name).read_text())
        path = data.draw(st.sampled_from(list(paths_in(document))), label="field")
        action = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]),
                           label="action")
        value = data.draw(HOSTILE, label="value")
        try:
            changed = mutate(document, path, action, value)
        except (KeyError, IndexError, TypeError):
            return  # nothing to delete there
        text = json.dumps(changed)
        (target / name).write_text(text)
        rehash(target, keep_files_entry=name == "manifest.json" and path[:1] == ("files",))
        before, outside = tree(target), tree(work)
        outcome = {}

        def run():
            try:
                loaded = load(target)
                outcome["proba"] = loaded.predict_proba(["forest fire", "calm"])
            except EnsembleError as exc:
                outcome["refused"] = str(exc)
                assert "\n" not in str(exc).strip(), str(exc)
            except BaseException as exc:  # noqa: BLE001 - what the test exists to catch
                outcome["uncaught"] = exc

        start = time.monotonic()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        limit = max(HANG_SECONDS, 3 * baseline)
        thread.join(limit)
        seconds = time.monotonic() - start
        COUNTS["mutations"] += 1
        COUNTS["slowest"] = max(COUNTS["slowest"], seconds)
        assert not thread.is_alive(), (f"loading hung ({limit:.0f} s) with {name} {path} "
                                       f"{action} {value!r:.80}")
        if "uncaught" in outcome:
            raise AssertionError(f"{name} {path} {action} {value!r:.80} raised "
                                 f"{type(outcome['uncaught']).__name__}: "
                                 f"{outcome['uncaught']}") from outcome["uncaught"]
        COUNTS["refused" if "refused" in outcome else "loaded"] += 1
        assert not marker.exists(), f"{name} {path}: the payload was imported"
        assert tree(target) == before, "loading changed the model directory"
        assert tree(work) == outside, "loading wrote a file"
    finally:
        shutil.rmtree(target, ignore_errors=True)


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=not THOROUGH, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


@fuzz(2000 if THOROUGH else 40)
@given(data=st.data())
def test_mutated_classical_models_load_or_fail_in_one_line(classical, payload_module, work,
                                                           data):
    attempt(classical[0], work, data, payload_module, classical[1])


@pytest.mark.skipif(not THOROUGH, reason="about a minute per few examples: runs in "
                                         "`make reliability` (CI covers neural members through "
                                         "check_plugin and test_hostile_models)")
@fuzz(200)
@given(data=st.data())
def test_mutated_neural_models_load_or_fail_in_one_line(neural, payload_module, work, data):
    attempt(neural[0], work, data, payload_module, neural[1])
