"""A new user's first hour with their own CSV: no config, `ensemble init`, hints."""

import json

import pandas as pd
import pytest

from engine.cli import main
from engine.config import tomllib

SPAM = ["win a free prize now, call", "urgent: claim your cash reward", "free entry, text WIN",
        "you have won a voucher, call now"]
HAM = ["see you at lunch tomorrow", "can you pick up milk", "running late, be there soon",
       "thanks for the call earlier"]


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    """An SMS-like CSV: string labels, a short category column, an id not called `id`."""
    root = tmp_path_factory.mktemp("sms")
    rows = [{"msg_id": 1000 + i, "category": "ab"[i % 2],
             "message": f"{(SPAM if i % 3 == 0 else HAM)[i % 4]} {i}",
             "label": "spam" if i % 3 == 0 else "ham"} for i in range(90)]
    pd.DataFrame(rows).to_csv(root / "sms.csv", index=False)
    pd.DataFrame(rows[:10]).drop(columns="label").to_csv(root / "new.csv", index=False)
    return root


CHEAP = ["--members", "tfidf-nb,tfidf-lr", "-q"]


def test_fit_a_csv_without_a_config(sms, capsys):
    model = sms / "model"
    assert main(["fit", str(sms / "sms.csv"), "--label", "label", "-o", str(model),
                 *CHEAP]) == 0
    err = capsys.readouterr().err
    assert "guessed text column 'message'" in err and "id column 'msg_id'" in err
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["data"]["text"] == "message" and manifest["data"]["id"] == "msg_id"
    assert manifest["classes"]["values"] == ["ham", "spam"]
    # the equivalent config is recorded, and `ensemble init MODEL` gives it back
    recorded = tomllib.loads(manifest["data"]["config"])
    assert recorded["data"]["label"] == "label"
    assert [m["plugin"] for m in recorded["members"].values()] == ["tfidf-nb", "tfidf-lr"]
    assert main(["init", str(model)]) == 0
    assert tomllib.loads(capsys.readouterr().out) == recorded
    out = sms / "pred.csv"
    assert main(["predict", str(model), str(sms / "new.csv"), "-o", str(out)]) == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["msg_id", "label", "proba_ham", "proba_spam"]
    assert (pred["label"] == ["spam" if i % 3 == 0 else "ham" for i in range(10)]).mean() >= 0.8


def test_fit_with_named_columns_and_default_members_are_checked(sms, capsys):
    code = main(["fit", str(sms / "sms.csv"), "--label", "label", "--text", "category",
                 "--text", "message", "--members", "tfidf-nb,tfdf-lr", "-q"])
    assert code == 2
    assert "unknown plugin 'tfdf-lr' (did you mean 'tfidf-lr'?)" in capsys.readouterr().err


def test_a_csv_where_a_config_is_expected_gets_a_hint(sms, capsys):
    assert main(["fit", str(sms / "sms.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--label COLUMN" in err and "not valid TOML" not in err
    renamed = sms / "sms-data.toml"
    renamed.write_text((sms / "sms.csv").read_text())
    assert main(["tune", str(renamed)]) == 2
    err = capsys.readouterr().err
    assert "is a data file, not a TOML config" in err and "ensemble init" in err


def test_config_flags_need_a_data_file(sms, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[members.nb]\nplugin = "tfidf-nb"\n')
    assert main(["fit", str(config), "--members", "tfidf-nb"]) == 2
    assert "--members goes with a data file and --label" in capsys.readouterr().err
    assert main(["fit", str(config), "--label", "y"]) == 2
    assert "c.toml is a config: set the columns in its [data] table" in capsys.readouterr().err


def test_init_writes_a_commented_config_that_runs(sms, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(sms / "sms.csv"), "--label", "label",
                 "--members", "tfidf-nb,tfidf-lr"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# Ensemble config for sms.csv")
    assert "guessed text column 'message'" in captured.err
    config = tomllib.loads(captured.out)
    assert config["data"]["text"] == "message" and config["data"]["id"] == "msg_id"
    (tmp_path / "my.toml").write_text(captured.out)
    assert main(["demo", "--config", "my.toml", "--report", "", "-q"]) == 0
    out = capsys.readouterr().out
    assert "holding out 10% of the rows" in out and "reference split" not in out
    assert (tmp_path / "models" / "sms" / "manifest.json").is_file()


def test_init_offers_class_names_for_integer_labels(tmp_path, capsys):
    pd.DataFrame({"question": ["how far", "who is", "what is", "when did"] * 5,
                  "coarse": [0, 1, 2, 3] * 5}).to_csv(tmp_path / "q.csv", index=False)
    assert main(["init", str(tmp_path / "q.csv"), "--label", "coarse"]) == 0
    out = capsys.readouterr().out
    assert '# class_names = ["class 0", "class 1", "class 2", "class 3"]' in out
    assert "# id = " in out  # no id column guessed


def test_demo_on_a_csv_predicts_the_test_file(sms, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", str(sms / "sms.csv"), "--label", "label", "--test",
                 str(sms / "new.csv"), *CHEAP]) == 0
    out = capsys.readouterr().out
    assert "wrote report.html" in out and "wrote predictions.csv" in out
    assert "tweets" not in out
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == 10


def test_no_id_column_is_recorded_when_the_data_has_none(tmp_path, capsys):
    pd.DataFrame({"text": ["good", "bad", "fine", "awful"] * 6,
                  "y": ["pos", "neg", "pos", "neg"] * 6}).to_csv(tmp_path / "t.csv",
                                                                  index=False)
    assert main(["fit", str(tmp_path / "t.csv"), "--label", "y", "-o",
                 str(tmp_path / "m"), *CHEAP]) == 0
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["data"]["id"] is None


def test_a_misspelled_member_parameter_suggests_and_lists(capsys):
    from engine import Ensemble
    from engine.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        Ensemble({"lr": ("tfidf-lr", {"ngram": (1, 2)})}).fit(["a b", "c d"] * 5, [0, 1] * 5)
    message = str(error.value)
    assert "invalid parameter 'ngram' for plugin 'tfidf-lr'" in message
    assert "(did you mean 'ngram_range'?)" in message and "C, analyzer, class_weight" in message


def test_a_dataframe_without_a_text_column_hints_text():
    from engine import Ensemble
    from engine.errors import DataError

    frame = pd.DataFrame({"n": [1, 2] * 6, "message": ["win cash", "see you"] * 6})
    with pytest.raises(DataError, match=r"columns are: n, message; name the text column with "
                                        r"text='message' \(Ensemble\(\.\.\., text=\.\.\.\)"):
        Ensemble({"nb": "tfidf-nb"}, cv=2).fit(frame, [0, 1] * 6)


QUESTIONS = {0: ["how far is it", "how long does it take", "how many miles"],
             1: ["who wrote this book", "who is the president", "who painted it"],
             2: ["where is the station", "where do they live", "where was it found"]}


def test_class_names_name_integer_labels_in_reports_leaderboards_and_model(tmp_path):
    from engine import Ensemble, load
    from engine.report import build_report
    from engine.serving import Limits, Service
    from engine.tables import to_markdown

    texts = [f"{t} {i}" for i in range(6) for c in QUESTIONS for t in QUESTIONS[c]]
    labels = [c for _ in range(6) for c in QUESTIONS for _ in QUESTIONS[c]]
    names = ["distance", "person", "place"]
    model = Ensemble({"nb": "tfidf-nb"}, cv=3, random_state=0, class_names=names)
    model.fit(texts, labels)
    assert model.predict(["who is she"]).tolist() == [1]  # predictions keep the labels
    assert model.class_labels() == names
    html = build_report(model, texts, labels)
    assert all(f">{name}<" in html for name in names)
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.class_labels() == names
    summary = Service(loaded, "m", Limits()).summary()
    assert summary["classes"] == [0, 1, 2] and summary["class_names"] == names
    assert "id_column" not in summary
    with pytest.raises(ValueError, match=r"class_names has 2 names for 3 classes \(0, 1, 2\)"):
        Ensemble({"nb": "tfidf-nb"}, cv=3, class_names=names[:2]).fit(texts, labels)
    binary = Ensemble({"nb": "tfidf-nb"}, cv=3, class_names={1: "person"})
    binary.fit(texts[:36], [int(c == 1) for c in labels[:36]])
    header = to_markdown(binary.leaderboard()).splitlines()[0]
    assert "F1 (positive: person)" in header


def test_class_names_from_the_config(tmp_path, capsys):
    from engine.config import load_config

    rows = [{"text": t, "y": c} for c in QUESTIONS for t in QUESTIONS[c]] * 4
    pd.DataFrame(rows).to_csv(tmp_path / "q.csv", index=False)
    (tmp_path / "q.toml").write_text(
        f'[data]\ntrain = "{(tmp_path / "q.csv").as_posix()}"\nlabel = "y"\n'
        f'class_names = ["distance", "person", "place"]\n[ensemble]\ncv = 3\n'
        f'[members.nb]\nplugin = "tfidf-nb"\n')
    assert load_config(tmp_path / "q.toml").build_ensemble().class_names == \
        ["distance", "person", "place"]
    assert main(["fit", str(tmp_path / "q.toml"), "-o", str(tmp_path / "m"), "-q"]) == 0
    assert main(["report", str(tmp_path / "m"), str(tmp_path / "q.csv"), "-o",
                 str(tmp_path / "r.html")]) == 0
    assert ">place<" in (tmp_path / "r.html").read_text()


def test_plugins_name_lists_parameters_defaults_and_ranges(capsys):
    assert main(["plugins", "keras-text"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("keras-text: plugin from ensemble-engine")
    assert "A Keras 3 text classifier" in out
    line = next(row for row in out.splitlines() if "│ epochs " in row)
    assert "5" in line and "in [1, " in line  # bounded since issue 29
    assert main(["plugins", "tfidf-lr", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    c = next(p for p in described["parameters"] if p["name"] == "C")
    assert c["default"] == "1.0" and c["description"]
    assert main(["plugins", "tfidf-lrr"]) == 2
    assert "(did you mean 'tfidf-lr'?)" in capsys.readouterr().err


def test_serving_examples_and_cli_messages_are_domain_neutral():
    import inspect

    import engine.cli
    import engine.serving

    for module in (engine.serving, engine.cli):
        source = inspect.getsource(module)
        assert "Forest fire" not in source and "most-wrong tweets" not in source
    assert "reference split" not in inspect.getsource(engine.cli.cmd_demo)


def test_demo_best_warns_up_front_without_bf16(monkeypatch, capsys):
    import engine.workflows
    import plugins._tensorflow

    def not_run(*args, **kwargs):
        raise ValueError("stopped before fitting")

    monkeypatch.setattr(engine.workflows, "run_demo", not_run)
    monkeypatch.setattr(plugins._tensorflow, "bfloat16_is_fast", lambda: False)
    assert main(["demo", "--preset", "best"]) == 2
    err = capsys.readouterr().err
    assert err.index("warning: this CPU has no bf16 units") < err.index("stopped before")
    assert "expect about 55 minutes for this demo on 2 cores (about 12" in err
    monkeypatch.setattr(plugins._tensorflow, "bfloat16_is_fast", lambda: True)
    assert main(["demo", "--preset", "best"]) == 2
    assert "warning" not in capsys.readouterr().err


def test_fit_takes_the_label_column_by_name():
    from engine import Ensemble
    from engine.errors import DataError

    frame = pd.DataFrame({"message": SPAM * 3 + HAM * 3, "kind": ["spam"] * 12 + ["ham"] * 12})
    model = Ensemble({"nb": "tfidf-nb"}, text="message", cv=3).fit(frame, "kind")
    assert model.classes_.tolist() == ["ham", "spam"]
    with pytest.raises(DataError, match=r"column 'knd' not found in X \(did you mean 'kind'\?\)"):
        Ensemble({"nb": "tfidf-nb"}, text="message", cv=3).fit(frame, "knd")
    with pytest.raises(DataError, match="needs X as a DataFrame"):
        Ensemble({"nb": "tfidf-nb"}, cv=3).fit(SPAM + HAM, "kind")
