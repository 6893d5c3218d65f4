"""`engine.tune` and `ensemble tune` on Optuna: the tuned config, resume, a time budget,
two processes on one study, kill -9, and bad input in one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.base import clone

from engine import Ensemble, tune
from engine.cli import main
from engine.config import read_toml
from engine.errors import ConfigError
from engine.registry import get_registry
from engine.tuning.budget import parse_duration
from tests.helpers import write_config

ROOT = Path(__file__).resolve().parents[1]
HARNESS = Path(__file__).with_name("tune_harness.py")


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                         os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def texts(small_tweets):
    return small_tweets["text"].tolist(), small_tweets["target"].to_numpy()


@pytest.fixture
def config(tmp_path, small_tweets):
    small_tweets.to_csv(tmp_path / "train.csv", index=False)
    return write_config(tmp_path / "tweets.toml", tmp_path / "train.csv",
                        members={"lr": {"plugin": "tfidf-lr", "ngram_range": [1, 2]}},
                        header="# my config, hand-written\n")


def _sqlite(tmp_path, name="study.db"):
    return f"sqlite:///{(tmp_path / name).as_posix()}"


# -- engine.tune and `ensemble tune` --------------------------------------------------------

def test_tune_returns_the_study_and_the_tuned_ensemble(texts, tmp_path):
    X, y = texts
    ens = Ensemble({"nb": "tfidf-nb", "lr": ("tfidf-lr", {"C": 0.05})}, cv=3, random_state=0)
    studies, tuned = tune(ens, X, y, trials=3, storage=_sqlite(tmp_path), seed=0,
                          metric="accuracy")
    assert set(studies) == {"nb", "lr"}
    for name, study in studies.items():
        trials = study.trials
        assert len(trials) == 3 and trials[0].user_attrs["default"]
        assert study.best_value >= trials[0].value  # the configured params are trial 0
        for trial in trials:  # every fold reports, for the pruner
            if trial.state.name == "COMPLETE":
                assert len(trial.intermediate_values) == 3
                assert trial.intermediate_values[2] == pytest.approx(trial.value)
        best = {k: v for k, v in study.best_params.items() if k != "ngram_range"}
        assert all(tuned.get_params()[f"{name}__{k}"] == v for k, v in best.items())
    assert tuned is not ens and ens.members["lr"] == ("tfidf-lr", {"C": 0.05})
    assert tuned.fit(X, y).predict(X[:3]).shape == (3,)


def test_ensemble_tune_writes_the_tuned_config_beside_and_resumes(config, tmp_path, capsys):
    original = config.read_bytes()
    url = _sqlite(tmp_path)
    assert main(["tune", str(config), "--trials", "2", "--storage", url, "--combiner"]) == 0
    out = capsys.readouterr().out
    for word in ("member", "params", "score", "seconds", "as configured", "alpha="):
        assert word in out
    tuned_path = config.with_name("tweets.tuned.toml")
    assert config.read_bytes() == original  # never overwritten
    tuned = read_toml(tuned_path)
    assert tuned["name"] == "tweets-tuned" and "alpha" in tuned["members"]["nb"]
    assert tuned["members"]["lr"]["plugin"] == "tfidf-lr"
    combiner = tuned["ensemble"]["combiner"]  # chosen too (--combiner)
    assert (combiner if isinstance(combiner, str) else combiner["name"]) in \
        get_registry().combiners()

    from engine.config import load_config

    first = [t.params for t in _study(url, "tweets:nb").trials]
    assert main(["-q", "tune", str(config), "--trials", "4", "--storage", url]) == 0  # resume
    trials = _study(url, "tweets:nb").trials
    assert len(trials) == 4 and [t.params for t in trials[:2]] == first
    assert sum(bool(t.user_attrs.get("default")) for t in trials) == 1
    best = _study(url, "tweets:nb").best_params["alpha"]  # the rewritten config holds it
    assert load_config(tuned_path).build_ensemble().get_params()["nb__alpha"] == best


def _study(url, name):
    import optuna

    return optuna.load_study(study_name=name, storage=url)


def test_a_time_budget_is_shared_by_cost_and_kept(texts, tmp_path):
    import time

    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    X, y = texts
    ens = Ensemble({"cheap": "tfidf-nb",
                    "dear": ("tfidf-lr", {"analyzer": "char_wb", "ngram_range": (2, 5)})},
                   cv=3, random_state=0)
    start = time.monotonic()
    result = tune(ens, X, y, time="10s", storage=_sqlite(tmp_path), pruner="none")
    took = time.monotonic() - start
    runs = sorted(((t.datetime_start, member, (t.datetime_complete - t.datetime_start)
                    .total_seconds()) for member, study in result.studies.items()
                   for t in study.trials), key=lambda run: run[0])
    last_dear = max(i for i, (_, member, _) in enumerate(runs) if member == "dear")
    turns = runs[:last_dear + 1]  # while both took turns (then the cheap one uses what is left)
    counts = {m: sum(1 for _, member, _ in turns if member == m) for m in ("cheap", "dear")}
    spent = {m: sum(s for _, member, s in turns if member == m) for m in ("cheap", "dear")}
    assert counts["dear"] >= 2 and abs(counts["cheap"] - counts["dear"]) <= 1
    assert spent["dear"] > spent["cheap"]  # as many trials: time in proportion to cost
    assert took < 10 + 15  # setup and one fold past the deadline, on a busy machine


@pytest.mark.parametrize("change, message", [
    ({"time": "0s"}, "positive duration"),
    ({"time": "ten minutes"}, "not a duration"),
    ({"trials": 0}, "positive integer"),
    ({"metric": "f2"}, "unknown metric 'f2' .did you mean 'f1'"),
    ({"storage": "nosuchdb://host/x"}, "cannot open storage nosuchdb://host/x"),
    ({"storage": "not a url"}, "not a database URL"),
    ({"spaces": {"nb": {"alhpa": {"low": 0.1, "high": 1}}}},
     "no parameter 'alhpa' .did you mean 'alpha'"),
    ({"spaces": {"nb": {"alpha": ["a", "b"]}}}, "takes real numbers, but the range given is "
                                                "a list of choices"),
    ({"spaces": {"nb": {"min_df": {"low": 0.5, "high": 2.5}}}}, "takes integers"),
    ({"spaces": {"nb": {"alpha": {"low": "a", "high": 1}}}}, "finite numbers"),
    ({"spaces": {"nope": {"alpha": [1.0]}}}, "not members"),
    ({"members": ["nope"]}, "cannot tune members"),
])
def test_bad_input_is_one_line(texts, tmp_path, change, message):
    X, y = texts
    ens = Ensemble({"nb": "tfidf-nb"}, cv=3, random_state=0)
    with pytest.raises(ConfigError, match=message) as info:
        tune(ens, X, y, **{"trials": 1, "storage": _sqlite(tmp_path), **change})
    assert "\n" not in str(info.value)


def test_a_budget_that_cannot_fit_one_trial_and_a_study_of_another_config(texts, tmp_path):
    X, y = texts
    url = _sqlite(tmp_path)
    ens = Ensemble({"nb": "tfidf-nb", "lr": ("tfidf-lr", {"analyzer": "char_wb"})}, cv=3,
                   random_state=0)
    with pytest.raises(ConfigError, match="cannot fit one trial of each member"):
        tune(ens, X, y, time=0.05, storage=url)
    with pytest.raises(ConfigError, match="cannot fit one trial"):  # known cost: at once
        tune(ens, X, y, time=0.05, storage=url)
    with pytest.raises(ConfigError, match="made from another config.*refusing to mix"):
        tune(ens, X, y, trials=1, storage=url, metric="log_loss")
    for change in ({"lr__C": 3.0}, {"lr__max_features": 500}):  # searched, or fixed
        with pytest.raises(ConfigError, match="made from another config"):
            tune(clone(ens).set_params(**change), X, y, trials=1, storage=url)


def test_cli_bad_input_is_one_error_line(config, capsys):
    assert main(["tune", str(config), "--storage", "postgresql://u:secret@nohost/db",
                 "--trials", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot open storage") and "secret" not in err
    assert len(err.splitlines()) == 1


def test_two_processes_share_one_study(config, tmp_path):
    url = _sqlite(tmp_path)
    command = [sys.executable, "-m", "engine.cli", "-q", "tune", str(config), "--members",
               "nb", "--trials", "16", "--storage", url]
    workers = [subprocess.Popen(command, cwd=tmp_path, env=_env(), stderr=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, text=True) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read()[-2000:]
    trials = [t for t in _study(url, "tweets:nb").trials if t.state.name in ("COMPLETE",
                                                                              "PRUNED")]
    assert 16 <= len(trials) <= 17  # the cap counts every worker's trials
    assert len({t.number for t in trials}) == len(trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both did some of the work
    assert sum(bool(t.user_attrs.get("default")) for t in trials) == 1


def test_killed_tune_resumes_with_no_trial_lost_or_duplicated(tmp_path):
    result = subprocess.run([sys.executable, str(HARNESS), "2", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT, env=_env())
    assert result.returncode == 0, result.stderr[-2000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["killed_inside_a_trial"] == 2 and 2 <= counts["cycles"] <= 6
    assert counts["completed_before_kills"] > 0
    assert counts["lost"] == 0 and counts["duplicated"] == 0 and counts["running_left"] == 0
    assert counts["killed_trials"] >= 1
    assert counts["killed_trials_retried_to_the_end"] == counts["killed_trials"]
    assert counts["as_configured_trials"] == {"nb": 1, "lr": 1}


def test_a_trial_taken_but_never_started_is_retried_not_lost(texts, tmp_path):
    """A worker killed between taking a trial and its first heartbeat: Optuna alone would
    leave that trial RUNNING forever, and a queued trial's parameters would be lost."""
    import time

    import optuna

    X, y = texts
    url = _sqlite(tmp_path)
    ens = Ensemble({"nb": "tfidf-nb"}, cv=3, random_state=0)
    tune(ens, X, y, trials=1, storage=url, heartbeat=1)
    study = _study(url, "ensemble:nb")
    wanted = {"alpha": 0.0123, "ngram_range": "[1, 2]", "min_df": 2, "sublinear_tf": True}
    study.enqueue_trial(wanted)
    taken = study.ask()  # RUNNING, no heartbeat, no worker: as if killed right here
    time.sleep(3.5)  # past the grace period of three heartbeats
    studies, _ = tune(ens, X, y, trials=3, storage=url, heartbeat=1)
    trials = studies["nb"].trials
    assert trials[taken.number].state == optuna.trial.TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == taken.number]
    assert len(retried) == 1 and retried[0].params == wanted
    assert retried[0].state.name in ("COMPLETE", "PRUNED")


def test_the_default_study_is_one_sqlite_file_under_models(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "tune", str(config), "--members", "nb", "--trials", "1"]) == 0
    assert (tmp_path / "models" / "tweets-tune.db").is_file()
    assert _study(f"sqlite:///{tmp_path / 'models' / 'tweets-tune.db'}", "tweets:nb").trials


def test_a_tuned_config_written_elsewhere_still_finds_its_data(config, tmp_path):
    from engine.config import load_config

    relative = tmp_path / "relative.toml"
    relative.write_text(config.read_text().replace(f'"{(tmp_path / "train.csv").as_posix()}"',
                                                   '"train.csv"'))
    out = tmp_path / "elsewhere" / "tuned.toml"
    assert main(["-q", "tune", str(relative), "--members", "nb", "--trials", "1",
                 "--storage", _sqlite(tmp_path), "-o", str(out)]) == 0
    assert load_config(out).data.train.resolve() == (tmp_path / "train.csv").resolve()


# -- round 3 (issue 29): a database or a study from someone else ----------------------------

def test_a_database_with_another_programs_studies_table_is_one_line(config, tmp_path, capsys):
    import sqlite3

    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE studies (id INTEGER PRIMARY KEY, owner TEXT)")
    assert main(["tune", str(config), "--trials", "1", "--storage",
                 _sqlite(tmp_path, "app.db")]) == 2
    err = capsys.readouterr().err
    assert "holds another program's tables (studies)" in err and err.count("\n") == 1
    with sqlite3.connect(tmp_path / "app.db") as db:  # Optuna added none of its tables
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("studies",)]


@pytest.mark.parametrize("edit, message", [
    ("extra", "sets 'evil', which is not in the search space"),
    ("alpha", "sets alpha = -5.0, outside its search space"),
    ("ngram_range", "sets ngram_range = (1, 1000000), outside its search space"),
    ("nested", "not a flat list of values"),
])
def test_values_from_an_edited_study_are_checked_before_the_tuned_config(
        texts, tmp_path, edit, message):
    """The study's database edited by hand, as someone handing it over could."""
    import sqlite3

    X, y = texts
    ens = Ensemble({"nb": "tfidf-nb"}, cv=2, random_state=0)
    url = _sqlite(tmp_path)
    tune(ens, X[:200], y[:200], trials=1, storage=url, study="s", seed=0)
    with sqlite3.connect(tmp_path / "study.db") as db:
        if edit == "extra":
            db.execute("INSERT INTO trial_params (trial_id, param_name, param_value, "
                       "distribution_json) SELECT trial_id, 'evil', 1.0, distribution_json "
                       "FROM trial_params WHERE param_name = 'alpha'")
        elif edit == "alpha":
            db.execute("UPDATE trial_params SET param_value = -5.0 WHERE param_name = 'alpha'")
        else:
            choice = "[1, 1000000]" if edit == "ngram_range" else "[" * 100_000
            dist = json.dumps({"name": "CategoricalDistribution",
                               "attributes": {"choices": [choice]}})
            db.execute("UPDATE trial_params SET param_value = 0, distribution_json = ? "
                       "WHERE param_name = 'ngram_range'", (dist,))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) \
            as info:
        tune(ens, X[:200], y[:200], trials=1, storage=url, study="s", seed=0)
    assert "\n" not in str(info.value) and "--study NEW-NAME" in str(info.value)
