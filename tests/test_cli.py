import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import build_parser, main
from tests.helpers import write_config

COMMANDS = ["fit", "predict", "evaluate", "report", "recombine", "submit", "plugins", "cache",
            "demo", "tune"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, small_tweets):
    root = tmp_path_factory.mktemp("cli")
    train = small_tweets.iloc[:500]
    test = small_tweets.iloc[500:].drop(columns="target")
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    small_tweets.iloc[500:][["id"]].assign(target=0).to_csv(root / "sample.csv", index=False)
    small_tweets.iloc[500:].to_csv(root / "labelled.csv", index=False)
    write_config(root / "config.toml", root / "train.csv", name="cli-test",
                 data={"id": "id"}, ensemble={"random_state": 1},
                 members={"lr": {"plugin": "tfidf-lr", "ngram_range": [1, 2]}})
    assert main(["fit", str(root / "config.toml"), "-o", str(root / "model")]) == 0
    return root


def test_every_command_has_help(capsys):
    parser = build_parser()
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([command, "--help"])
        assert exit_.value.code == 0
        assert "usage: ensemble " + command in capsys.readouterr().out


def test_fit_writes_a_model(workspace):
    manifest = json.loads((workspace / "model" / "manifest.json").read_text())
    assert [m["name"] for m in manifest["members"]] == ["nb", "lr"]
    assert manifest["data"]["label"] == "target"


def test_predict_writes_ids_labels_and_probabilities(workspace):
    out = workspace / "pred.csv"
    assert main(["predict", str(workspace / "model"), str(workspace / "test.csv"),
                 "-o", str(out)]) == 0
    pred = pd.read_csv(out)
    test = pd.read_csv(workspace / "test.csv")
    assert list(pred.columns) == ["id", "label", "proba_0", "proba_1"]
    assert pred["id"].tolist() == test["id"].tolist()
    assert ((pred.proba_0 + pred.proba_1 - 1).abs() < 1e-9).all()
    assert set(pred["label"]) <= {0, 1}


def test_predict_again_after_a_re_save_uses_the_new_model(workspace, tmp_path):
    """One process (a notebook, a wrapper) predicting twice: a model saved over the
    first one in between is the one that predicts the second time."""
    model = tmp_path / "model"
    shutil.copytree(workspace / "model", model)
    out = tmp_path / "pred.csv"
    argv = ["predict", str(model), str(workspace / "test.csv"), "-o", str(out)]
    assert main(argv) == 0
    assert (pd.read_csv(out)["label"] == 1).any()
    assert main(["recombine", str(model), "--combiner", "mean", "--threshold", "0.999"]) == 0
    assert main(argv) == 0
    assert (pd.read_csv(out)["label"] == 0).all()  # the new threshold, not a cached model


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown", "table"])
def test_evaluate_scores_members_and_combiners(workspace, capsys, fmt):
    assert main(["evaluate", str(workspace / "model"), str(workspace / "labelled.csv"),
                 "--format", fmt]) == 0
    out = capsys.readouterr().out
    for name in ["nb", "lr", "ensemble (stacking)", "mean", "vote"]:
        assert name in out
    if fmt == "csv":
        table = pd.read_csv(pd.io.common.StringIO(out), index_col=0)
        assert {"accuracy", "precision", "recall", "f1", "f1_positive"} <= set(table.columns)
        assert table["accuracy"].between(0.5, 1).all()


def test_recombine_to_a_new_directory(workspace):
    out = workspace / "mean-model"
    assert main(["recombine", str(workspace / "model"), "--combiner", "mean",
                 "--params", '{"weights": {"nb": 1, "lr": 3}}', "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["combiner"]["name"] == "mean"
    assert manifest["combiner"]["config"]["weights"] == {"nb": 1, "lr": 3}
    assert manifest["threshold"] is None
    assert main(["recombine", str(out), "--combiner", "mean", "--threshold", "0.35"]) == 0
    assert json.loads((out / "manifest.json").read_text())["threshold"] == 0.35


def test_submit_matches_the_sample(workspace):
    out = workspace / "submission.csv"
    assert main(["submit", str(workspace / "model"), str(workspace / "test.csv"),
                 "--sample", str(workspace / "sample.csv"), "-o", str(out)]) == 0
    sub, sample = pd.read_csv(out), pd.read_csv(workspace / "sample.csv")
    assert list(sub.columns) == ["id", "target"]
    assert sub["id"].tolist() == sample["id"].tolist()
    assert sub["target"].dtype == sample["target"].dtype


def test_submit_refuses_mismatched_ids_and_writes_nothing(workspace, capsys):
    sample = pd.read_csv(workspace / "sample.csv")
    sample.loc[0, "id"] = -1
    sample.to_csv(workspace / "bad_sample.csv", index=False)
    out = workspace / "never.csv"
    assert main(["submit", str(workspace / "model"), str(workspace / "test.csv"),
                 "--sample", str(workspace / "bad_sample.csv"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "do not match the sample submission" in err and "-1" in err
    assert not out.exists()
    assert not list(workspace.glob(".never.csv*"))


def test_plugins_lists_builtins_with_packages(capsys):
    assert main(["plugins", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert entries["tfidf-nb"]["package"] == "ensemble-engine"
    assert entries["stacking"]["kind"] == "combiner"


@pytest.mark.parametrize("argv, message", [
    (["predict", "{root}/nope", "{root}/test.csv", "-o", "{root}/x.csv"], "no model directory"),
    (["predict", "{root}/model", "{root}/missing.csv", "-o", "{root}/x.csv"], "not found"),
    (["predict", "{root}/model", "{root}/test.csv", "-o", "{root}/x.csv", "--text", "txt"],
     "column 'txt' not found in data (did you mean 'text'?)"),
    (["fit", "{root}/missing.toml"], "config file not found"),
    (["recombine", "{root}/model", "--combiner", "avg"], "unknown combiner 'avg'"),
    (["evaluate", "{root}/model", "{root}/test.csv"], "column 'target' not found"),
])
def test_errors_are_one_line_and_exit_2(workspace, capsys, argv, message):
    argv = [a.format(root=workspace) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert "\n" not in err and "Traceback" not in err
    assert not (workspace / "x.csv").exists()


def test_bad_config_key_is_named(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('[data]\ntrain="t.csv"\nlabell="y"\n'
                                     '[members.nb]\nplugin="tfidf-nb"\n')
    assert main(["fit", str(tmp_path / "c.toml")]) == 2
    assert "unknown key 'labell' in [data] (did you mean 'label'?)" in capsys.readouterr().err


def test_console_script_exits_nonzero_without_traceback(tmp_path):
    ensemble = Path(sys.executable).with_name("ensemble")
    result = subprocess.run([str(ensemble), "predict", str(tmp_path / "none"), "x.csv", "-o",
                             str(tmp_path / "o.csv")], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def _run_on_terminal(argv: list[str]) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns what it showed."""
    import os
    import pty

    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "engine.cli", *argv],
                               stdin=subprocess.DEVNULL, stdout=child_fd, stderr=child_fd,
                               close_fds=True)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=300) == 0
    os.close(main_fd)
    return b"".join(chunks).decode("utf-8", "replace")


def test_fit_shows_a_progress_bar_on_a_terminal_unless_quiet(workspace):
    shown = _run_on_terminal(["fit", str(workspace / "config.toml"), "-o",
                              str(workspace / "model-tty")])
    assert "8/8" in shown and "elapsed" in shown and "left" in shown  # 2 members x (3 folds + 1)
    quiet = _run_on_terminal(["fit", str(workspace / "config.toml"), "-o",
                              str(workspace / "model-tty"), "--quiet"])
    assert "elapsed" not in quiet and "saved" in quiet


def test_fit_reports_the_saved_model_size(workspace, capsys):
    out = workspace / "model-size"
    assert main(["fit", str(workspace / "config.toml"), "-o", str(out), "--quiet"]) == 0
    said = re.search(r"saved .*: ([\d.]+) MB \((\S+) ([\d.]+) MB, (\S+) ([\d.]+) MB\)",
                     capsys.readouterr().out)
    on_disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert said and float(said[1]) == pytest.approx(on_disk / 1e6, abs=0.051)
    member = {m: sum(f.stat().st_size for f in (out / "members" / m).rglob("*") if f.is_file())
              for m in (said[2], said[4])}
    assert float(said[3]) >= float(said[5])  # largest first
    assert float(said[3]) == pytest.approx(member[said[2]] / 1e6, abs=0.051)


def test_piped_output_gets_a_plain_line_per_fit_instead_of_a_bar(workspace):
    result = subprocess.run([sys.executable, "-m", "engine.cli", "fit",
                             str(workspace / "config.toml"), "-o", str(workspace / "model-pipe")],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and "elapsed" not in result.stdout + result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr  # no bar drawing
    steps = [line for line in result.stderr.splitlines() if line.startswith("fitting ")]
    total = len(steps)
    assert total > 1 and steps[-1].startswith(f"fitting {total}/{total}: ")
    assert all(line.endswith("so far)") for line in steps)


@pytest.mark.parametrize("member, value, message", [
    ("nb", "[" * 100_000 + "]" * 100_000, "nests arrays or tables deeper than Python can"),
    ("nb", "[" * 100 + "]" * 100, "nests deeper than 64 levels"),
    ("nb", "9" * 5000, "Exceeds the limit (4300 digits)"),
    ("dense", "1_000_000_000", "embedding_dim must be in [1, 1024], got 1000000000"),
])
def test_hostile_config_values_are_one_line_not_a_traceback(tmp_path, capsys, member, value,
                                                            message):
    key = "embedding_dim" if member == "dense" else "alpha"
    plugin = "keras-text" if member == "dense" else "tfidf-nb"
    (tmp_path / "train.csv").write_text("text,target\n" + "a,0\nb,1\n" * 6)
    (tmp_path / "c.toml").write_text(f'[data]\ntrain="train.csv"\n[members.{member}]\n'
                                     f'plugin="{plugin}"\n{key} = {value}\n')
    assert main(["fit", str(tmp_path / "c.toml"), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "use sys." not in err
    assert not (tmp_path / "m").exists()


def test_fit_refuses_an_ngram_range_its_own_load_would_refuse(tmp_path, capsys):
    (tmp_path / "train.csv").write_text("text,target\n" + "fire here,0\ncalm day,1\n" * 6)
    (tmp_path / "c.toml").write_text('[data]\ntrain="train.csv"\n[members.nb]\n'
                                     'plugin="tfidf-nb"\nngram_range = [1, 1000000]\n')
    assert main(["fit", str(tmp_path / "c.toml"), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "sets ngram_range (1, 1000000); a saved vectorizer needs 1 <= min <= max <= 16" \
        in err and err.count("\n") == 1
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("params, message", [
    ('{"weights": ' + "[" * 100_000 + "]" * 100_000 + "}", "'--params' nests deeper than"),
    ('{"weights": ' + "[" * 100 + "]" * 100 + "}", "'--params' nests deeper than 64"),
    ('{"weights": [' + "7" * 5000 + "]}", "Exceeds the limit (4300 digits)"),
])
def test_recombine_params_json_is_bounded_like_every_json_read(workspace, capsys, params,
                                                               message):
    out = workspace / "never-written"
    assert main(["recombine", str(workspace / "model"), "--combiner", "mean", "--params",
                 params, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "use sys." not in err
    assert not out.exists()
