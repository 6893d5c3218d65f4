"""Malformed and hostile input through the Python API and the CLI, property-tested.

Every input either works or fails with a clear one-line error; no partial files.
Set HYPOTHESIS_PROFILE=thorough for many more examples (benchmarks/reliability.py).
"""

import json
import os
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Ensemble, load
from engine.cli import main
from engine.errors import DataError, EnsembleError

settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TRIED: dict[str, int] = {}
WORDS = ["fire", "flood", "storm", "quake", "lunch", "party", "music", "game", "sunny"]
texts_anything = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
texts_mostly_words = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
    st.sampled_from(["", " ", "\t\n", "\u200b", "🔥🔥", "\x00", "a" * 2000, "\r\n\"quoted\"\n"]),
    texts_anything)


def tried(kind: str) -> None:
    TRIED[kind] = TRIED.get(kind, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    log = os.environ.get("ENSEMBLE_RELIABILITY_LOG")
    if log:
        with open(log, "a") as handle:
            for kind, n in TRIED.items():
                handle.write(json.dumps({"kind": kind, "inputs": n}) + "\n")


def one_line(message: str) -> bool:
    return bool(message.strip()) and "\n" not in message.strip()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_tweets):
    path = tmp_path_factory.mktemp("hostile") / "model"
    Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking", cv=3,
             random_state=0).fit(small_tweets, small_tweets["target"]).save(
        path, {"text": "text", "label": "target", "id": "id"})
    return path


labels_strategy = st.one_of(
    st.lists(st.sampled_from([0, 1, 2]), min_size=2, max_size=40),
    st.lists(st.sampled_from(["a", "b", "c d", "ü", ""]), min_size=2, max_size=40),
    st.lists(st.sampled_from([True, False]), min_size=2, max_size=40),
    st.lists(st.one_of(st.integers(0, 2), st.sampled_from(["x", "y"])), min_size=2, max_size=40),
    st.lists(st.one_of(st.floats(allow_nan=True), st.none(), st.just(1)), min_size=2,
             max_size=40),
)


@given(data=st.data())
def test_api_fit_and_predict_work_or_fail_clearly(data):
    labels = data.draw(labels_strategy, label="labels")
    texts = data.draw(st.lists(texts_mostly_words, min_size=len(labels), max_size=len(labels)),
                      label="texts")
    tried("api-fit")
    ens = Ensemble({"nb": "tfidf-nb", "lr": ("tfidf-lr", {"min_df": 1})}, combiner="stacking",
                   cv=2, random_state=0)
    try:
        ens.fit(texts, labels)
    except ValueError as exc:  # EnsembleError is a ValueError; so are scikit-learn's own
        assert one_line(str(exc)), str(exc)
        return
    new = data.draw(st.lists(texts_mostly_words, min_size=1, max_size=10), label="new")
    proba = ens.predict_proba(new)
    assert proba.shape == (len(new), len(ens.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert set(ens.predict(new).tolist()) <= set(ens.classes_.tolist())


@st.composite
def csv_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["garbage", "invalid-utf8", "bom", "quoted", "columns",
                                 "empty", "nul"]))
    tried(f"csv-{kind}")
    if kind == "garbage":
        return draw(st.binary(max_size=400))
    if kind == "empty":
        return b""
    texts = draw(st.lists(texts_mostly_words, min_size=1, max_size=8))
    # object dtype: pandas' Arrow strings refuse lone surrogates, which reach the file as bytes
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts}, dtype=object)
    if kind == "columns":
        frame = frame.rename(columns={"text": draw(st.sampled_from(["Text", "tweet", "", "id"]))})
    body = frame.to_csv(index=False).encode("utf-8", "surrogatepass")
    if kind == "invalid-utf8":
        cut = draw(st.integers(0, len(body)))
        return body[:cut] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) \
            + body[cut:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + body
    if kind == "nul":
        return body.replace(b",", b",\x00", 1)
    return body


@given(data=st.data())
def test_cli_predict_on_hostile_csv_works_or_fails_in_one_line(model_dir, tmp_path_factory,
                                                               capsys, data):
    root = tmp_path_factory.mktemp("csv")
    (root / "in.csv").write_bytes(data.draw(csv_bytes(), label="csv"))
    out = root / "out.csv"
    status = main(["predict", str(model_dir), str(root / "in.csv"), "-o", str(out)])
    captured = capsys.readouterr()
    assert status in (0, 2)
    if status == 2:
        assert captured.err.startswith("error: ") and one_line(captured.err), captured.err
        assert not out.exists()
    else:
        written = pd.read_csv(out)
        assert len(written) == len(pd.read_csv(root / "in.csv", encoding="utf-8-sig"))
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []


@given(texts=st.lists(texts_mostly_words, min_size=4, max_size=30),
       labels=st.sampled_from(["text", "int", "mixed", "missing"]))
def test_cli_fit_on_hostile_training_data_leaves_no_partial_model(tmp_path_factory, capsys,
                                                                  texts, labels):
    tried("cli-fit")
    root = tmp_path_factory.mktemp("fit")
    target = {"text": [["yes", "no"][i % 2] for i in range(len(texts))],
              "int": [i % 2 for i in range(len(texts))],
              "mixed": [["yes", 1][i % 2] for i in range(len(texts))],
              "missing": [None if i == 0 else i % 2 for i in range(len(texts))]}[labels]
    # object dtype and surrogatepass: a lone surrogate reaches the file as invalid UTF-8
    pd.DataFrame({"text": texts, "target": target}, dtype=object).to_csv(
        root / "train.csv", index=False, errors="surrogatepass")
    (root / "c.toml").write_text(f'[data]\ntrain = "{root / "train.csv"}"\nfill_na = ""\n'
                                 f'[ensemble]\ncv = 2\n[members.nb]\nplugin = "tfidf-nb"\n')
    status = main(["-q", "fit", str(root / "c.toml"), "-o", str(root / "model")])
    captured = capsys.readouterr()
    if status == 2:
        assert captured.err.startswith("error: ") and one_line(captured.err), captured.err
        assert not (root / "model").exists()
    else:
        assert status == 0 and load(root / "model").predict(["fire"]).shape == (1,)
    assert not [p for p in root.iterdir() if p.name.startswith(".") and "tmp" in p.name]


@pytest.mark.parametrize("member", [
    "tfidf-nb", "tfidf-lr",
    ("keras-text", {"architecture": "dense", "epochs": 1}),
    ("keras-text", {"architecture": "lstm", "epochs": 1}),
])
def test_every_plugin_survives_huge_empty_and_odd_texts(member, small_tweets):
    ens = Ensemble({"m": member}, cv=2, random_state=0).fit(small_tweets, small_tweets["target"])
    odd = ["", "   ", "\n\n", "🔥" * 1000, "x" * 1_000_000,
           " ".join(string.printable for _ in range(2000)), "\x00\x01\x02", "ﷺ" * 50]
    tried("huge-odd-texts")
    proba = ens.predict_proba(odd)
    assert proba.shape == (len(odd), 2) and np.isfinite(proba).all()


def test_use_member_survives_huge_empty_and_odd_texts(small_tweets, tmp_path):
    from tests.helpers import build_savedmodel

    handle = build_savedmodel(tmp_path / "tiny")
    ens = Ensemble({"use": ("use", {"backend": "tfhub", "handle": str(handle)})}, cv=2,
                   random_state=0).fit(small_tweets, small_tweets["target"])
    proba = ens.predict_proba(["", "  ", "x" * 1_000_000, "🔥" * 1000, "\x00"])
    assert proba.shape == (5, 2) and np.isfinite(proba).all()


def test_hundreds_of_classes(tmp_path):
    rng = np.random.default_rng(0)
    classes = [f"class-{i:03d}" for i in range(300)]
    texts, labels = [], []
    for i, label in enumerate(classes):
        for _ in range(3):
            texts.append(f"token{i} " + " ".join(rng.choice(WORDS, 3)))
            labels.append(label)
    tried("hundreds-of-classes")
    ens = Ensemble({"nb": "tfidf-nb", "lr": ("tfidf-lr", {"min_df": 1})}, combiner="mean",
                   cv=3, random_state=0).fit(texts, labels)
    assert ens.predict(["token123 fire", "token7"]).tolist() == ["class-123", "class-007"]
    ens.save(tmp_path / "m")
    assert load(tmp_path / "m").predict_proba(["token7"]).shape == (1, 300)
    # stacking learns 600 features from 900 rows: it runs, whatever it learns
    stacked = ens.recombine("stacking")
    assert stacked.predict_proba(["token7"]).shape == (1, 300)


def test_one_row_per_class_is_a_clear_error():
    with pytest.raises(DataError, match="at least 2 rows"):
        Ensemble({"nb": "tfidf-nb"}, cv=2).fit(["a", "b", "c"], ["x", "y", "z"])


def test_labels_unseen_in_training_are_named_by_evaluate(model_dir, tmp_path, capsys):
    pd.DataFrame({"text": ["fire", "lunch"], "target": [1, 7]}).to_csv(tmp_path / "l.csv",
                                                                       index=False)
    assert main(["evaluate", str(model_dir), str(tmp_path / "l.csv")]) == 2
    assert "labels ['7'] were not seen in training" in capsys.readouterr().err


def test_quoted_newlines_survive_predict(model_dir, tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "text": ['fire\nin "the" hills', "calm,\r\nday"]})
    frame.to_csv(tmp_path / "q.csv", index=False)
    assert main(["predict", str(model_dir), str(tmp_path / "q.csv"), "-o",
                 str(tmp_path / "o.csv")]) == 0
    assert pd.read_csv(tmp_path / "o.csv")["id"].tolist() == [1, 2]


def test_invalid_utf8_says_what_to_do(model_dir, tmp_path, capsys):
    (tmp_path / "latin.csv").write_bytes("id,text\n1,café brûlé\n".encode("latin-1"))
    assert main(["predict", str(model_dir), str(tmp_path / "latin.csv"), "-o",
                 str(tmp_path / "o.csv")]) == 2
    assert "UTF-8" in capsys.readouterr().err
    assert not Path(tmp_path / "o.csv").exists()


def test_duplicate_ids_in_a_submission_are_refused(model_dir, tmp_path, capsys):
    pd.DataFrame({"id": [1, 1], "text": ["a", "b"]}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"id": [1, 1], "target": [0, 0]}).to_csv(tmp_path / "s.csv", index=False)
    assert main(["submit", str(model_dir), str(tmp_path / "t.csv"), "--sample",
                 str(tmp_path / "s.csv"), "-o", str(tmp_path / "sub.csv")]) == 2
    assert "repeats ids" in capsys.readouterr().err
    assert not (tmp_path / "sub.csv").exists()


def test_errors_are_ensemble_errors_not_crashes():
    with pytest.raises(EnsembleError):
        Ensemble({"nb": "tfidf-nb"}).fit(["a", "b"], [1, "x"])
