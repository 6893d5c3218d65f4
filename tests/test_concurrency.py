"""Several processes at once: shared model, shared feature cache, one output directory."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from engine import Ensemble, load
from tests.helpers import build_savedmodel
from tests.test_crash_safety import run_harness

# Loads while another process saves the same model (benchmarks/reliability.py: 1,000).
LOADS = int(os.environ.get("ENSEMBLE_CONCURRENT_LOADS", "100"))


def cli(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "-q", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def finish(*processes):
    results = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), results
    return results


@pytest.fixture(scope="module")
def encoder_model(tmp_path_factory, small_tweets):
    root = tmp_path_factory.mktemp("concurrent")
    handle = build_savedmodel(root / "tiny-use")
    members = {"nb": "tfidf-nb", "use": ("use", {"backend": "tfhub", "handle": str(handle)})}
    train, test = small_tweets.iloc[:400], small_tweets.iloc[400:]
    Ensemble(members, cv=3, random_state=0).fit(train, train["target"]).save(
        root / "model", {"text": "text", "id": "id"})
    test.to_csv(root / "test.csv", index=False)
    return root


def test_two_processes_predicting_at_once_match_one_alone(encoder_model, tmp_path):
    root = encoder_model
    shared = {"ENSEMBLE_CACHE_DIR": str(tmp_path / "shared-cache")}
    trust = ("--trust", root / "tiny-use")  # a stored TF Hub handle is refused unless trusted
    finish(cli("predict", root / "model", root / "test.csv", *trust, "-o", tmp_path / "alone.csv",
               env={"ENSEMBLE_CACHE_DIR": str(tmp_path / "own-cache")}))
    finish(*[cli("predict", root / "model", root / "test.csv", *trust, "-o", tmp_path / f"p{i}.csv",
                 env=shared) for i in range(2)])
    alone = pd.read_csv(tmp_path / "alone.csv")
    for i in range(2):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / f"p{i}.csv"), alone)


def test_two_fits_writing_one_directory_leave_one_whole_model(tmp_path, small_tweets):
    small_tweets.to_csv(tmp_path / "train.csv", index=False)
    for alpha in (0.1, 3.0):
        (tmp_path / f"a{alpha}.toml").write_text(
            f'name = "race"\n[data]\ntrain = "{tmp_path / "train.csv"}"\n'
            f'[ensemble]\ncv = 3\nrandom_state = 0\n'
            f'[members.nb]\nplugin = "tfidf-nb"\nalpha = {alpha}\n')
    out = tmp_path / "models" / "race"
    for _ in range(2):
        finish(cli("fit", tmp_path / "a0.1.toml", "-o", out),
               cli("fit", tmp_path / "a3.0.toml", "-o", out))
        model = load(out)  # verifies every file's sha256: one save, not a mix of two
        alpha = json.loads((out / "manifest.json").read_text())["members"][0]["config"]["alpha"]
        assert model.members_["nb"].alpha == alpha and alpha in (0.1, 3.0)
    assert sorted(p.name for p in out.parent.iterdir()) == [".race.lock", "race"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_loads_during_saves_never_fail_spuriously(tmp_path):
    # Before the shared read lock, 41 of 1,000 such loads failed ("changed since it was saved").
    counts = run_harness("load", tmp_path, LOADS)
    assert counts["loads"] == LOADS and counts["saves_meanwhile"] > 0
    assert counts["failures"] == 0, counts["errors"]
    assert counts["mixed"] == 0  # every load predicted exactly as the old or the new model
