"""Distillation: a student learns the ensemble's own out-of-fold probabilities (and its
predictions on unlabeled texts), predicts like any model, and records its teacher."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from engine import Ensemble, ModelPlugin, load
from engine.cli import main
from engine.errors import ConfigError, DataError
from engine.oof import ensemble_oof_proba
from engine.registry import get_registry
from plugins.tfidf_lr import TfidfLR
from tests.helpers import write_config


@pytest.fixture(scope="module")
def teacher(small_tweets):
    train = small_tweets.iloc[:500]
    return Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking", cv=3,
                    random_state=0, member_text={"lr": ["keyword", "text"]}, fill_na="").fit(
        train, train["target"])


def test_student_learns_the_out_of_fold_probabilities_not_in_sample_ones(teacher, small_tweets):
    train = small_tweets.iloc[:500]
    student = teacher.distill("tfidf-lr")  # right after fit: no X, y needed
    assert list(student.members_) == ["student"] and student.text == ["text", "keyword"]
    texts = student.member_texts(train)["student"]
    expected = TfidfLR(random_state=0).fit_soft(texts, ensemble_oof_proba(teacher))
    assert np.array_equal(student.members_["student"].predict_proba(texts),
                          expected.predict_proba(texts))
    in_sample = teacher.predict_proba(train)
    overfit = TfidfLR(random_state=0).fit_soft(texts, in_sample)
    assert not np.allclose(overfit.predict_proba(texts), expected.predict_proba(texts))
    assert student.predict(small_tweets.iloc[500:]).dtype == teacher.classes_.dtype


def test_unlabeled_rows_learn_the_teachers_predictions_and_their_labels_are_never_read(
        teacher, small_tweets):
    extra = small_tweets.iloc[500:]
    first = teacher.distill("tfidf-lr", unlabeled=extra)
    flipped = teacher.distill("tfidf-lr", unlabeled=extra.assign(target=1 - extra["target"]))
    assert np.array_equal(first.predict_proba(extra), flipped.predict_proba(extra))
    assert first.distilled_from_["unlabeled"]["n_rows"] == len(extra)
    # the student moved towards the teacher on the rows it was shown
    plain = teacher.distill("tfidf-lr")
    gap = lambda s: np.abs(s.predict_proba(extra) - teacher.predict_proba(extra)).mean()  # noqa: E731
    assert gap(first) < gap(plain)


def test_saved_student_records_its_teacher_and_round_trips(teacher, small_tweets, tmp_path):
    teacher.save(tmp_path / "teacher")
    loaded_teacher = load(tmp_path / "teacher")
    train = small_tweets.iloc[:500]
    student = loaded_teacher.distill(("tfidf-lr", {"C": 4.0}), X=train, y=train["target"],
                                     temperature=0.5, cv=3)
    student.save(tmp_path / "student")
    manifest = json.loads((tmp_path / "student" / "manifest.json").read_text())
    record = manifest["distilled_from"]
    assert record["teacher"]["manifest_sha256"] == loaded_teacher.manifest_sha256_
    assert [m["name"] for m in record["teacher"]["members"]] == ["nb", "lr"]
    assert record["teacher"]["combiner"] == {"name": "stacking"}
    assert record["teacher"]["training"]["n_rows"] == 500
    assert record["student"] == {"plugin": "tfidf-lr", "config": record["student"]["config"],
                                 "learns": "probabilities"}
    assert record["student"]["config"]["C"] == 4.0 and record["temperature"] == 0.5
    assert 0.5 < manifest["scores"]["student (cross-validated)"]["accuracy"] <= 1
    again = load(tmp_path / "student")
    rows = small_tweets.iloc[500:]
    assert np.array_equal(again.predict_proba(rows), student.predict_proba(rows))
    with pytest.raises(ConfigError, match="distilled student; use its teacher"):
        again.distill(X=train, y=train["target"])
    with pytest.raises(ConfigError, match="labelled data"):
        again.leaderboard()
    board = again.leaderboard(rows, rows["target"])  # held-out scores work as for any model
    assert list(board.index) == ["student", "ensemble (mean)"]


class NoSoft(ModelPlugin):
    """A plugin without fit_soft: it gets the teacher's most probable class."""

    name = "no-soft-test"

    def fit(self, X, y):
        texts, codes = self._validate_fit(X, y)
        self.share_ = float(np.mean(codes == 1))
        return self

    def predict_proba(self, X):
        n = len(self._validate_predict(X))
        return np.tile([1 - self.share_, self.share_], (n, 1))


def test_a_plugin_without_fit_soft_learns_argmax_with_one_warning(teacher):
    name = get_registry().register_class(NoSoft, "plugin")
    try:
        with pytest.warns(UserWarning, match="no fit_soft.*most probable class") as caught:
            student = teacher.distill(NoSoft())
        assert len(caught) == 1
        argmax_share = float(np.mean(ensemble_oof_proba(teacher).argmax(axis=1) == 1))
        assert student.members_["student"].share_ == pytest.approx(argmax_share)
        assert student.distilled_from_["student"]["learns"] == "most probable class"
    finally:
        get_registry().unregister(name=name)


def test_multiclass_student_keeps_string_labels(three_class_texts):
    texts, codes = three_class_texts
    labels = np.array(["fire", "flood", "quiet"], dtype=object)[codes]
    teacher = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking", cv=3,
                       random_state=0).fit(texts, labels)
    student = teacher.distill("tfidf-nb")
    assert list(student.classes_) == ["fire", "flood", "quiet"]
    assert np.mean(student.predict(texts) == teacher.predict(texts)) > 0.9


@pytest.mark.parametrize("call, error, match", [
    (lambda t, d: t.distill("no-such-plugin"), ConfigError, "cannot build the student"),
    (lambda t, d: t.distill(unlabeled=d.rename(columns={"text": "body"})[["body"]]),
     DataError, "no column 'keyword', which the teacher reads"),
    (lambda t, d: t.distill(unlabeled=d.iloc[:0]), DataError, "no rows"),
    (lambda t, d: t.distill(X=d.iloc[:499], y=d["target"].iloc[:499]), DataError,
     "not the 500 rows"),
    (lambda t, d: t.distill(temperature=0), ConfigError, "temperature"),
])
def test_bad_input_is_one_line(teacher, small_tweets, call, error, match):
    with pytest.raises(error, match=match) as info:
        call(teacher, small_tweets.iloc[:500])
    assert "\n" not in str(info.value)


def test_unlabeled_texts_in_another_column(teacher, small_tweets):
    extra = small_tweets.iloc[500:].rename(columns={"text": "body"})
    with pytest.raises(ConfigError, match="reads several columns"):  # which one is "body"?
        teacher.distill(unlabeled=extra, unlabeled_text="body")
    train = small_tweets.iloc[:500]
    simple = Ensemble({"nb": "tfidf-nb"}, cv=3, random_state=0).fit(train, train["target"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        student = simple.distill("tfidf-lr", unlabeled=extra, unlabeled_text="body")
    assert student.distilled_from_["unlabeled"]["n_rows"] == len(extra)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, small_tweets):
    root = tmp_path_factory.mktemp("distill-cli")
    small_tweets.iloc[:500].to_csv(root / "train.csv", index=False)
    small_tweets.iloc[500:].drop(columns="target").to_csv(root / "test.csv", index=False)
    small_tweets.iloc[500:].to_csv(root / "labelled.csv", index=False)
    write_config(root / "config.toml", root / "train.csv", name="distill-test",
                 data={"id": "id"})
    assert main(["fit", str(root / "config.toml"), "-o", str(root / "teacher"), "-q"]) == 0
    return root


def test_cli_distills_with_test_csv_and_says_both_accuracies(fitted, capsys):
    out = fitted / "student"
    assert main(["distill", str(fitted / "teacher"), "-o", str(out), "--unlabeled",
                 str(fitted / "test.csv"), "--cv", "2", "-q"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert line.startswith("teacher ") and "-> student (tfidf-lr)" in line and "rows/s" in line
    assert "cross-validated" in line and "n/a" not in line
    assert main(["predict", str(out), str(fitted / "test.csv"), "-o",
                 str(fitted / "pred.csv")]) == 0
    predictions = pd.read_csv(fitted / "pred.csv")
    assert len(predictions) == 100 and set(predictions["label"]) <= {0, 1}
    assert main(["distill", str(fitted / "teacher"), "-o", str(fitted / "student-valid"),
                 "--valid", str(fitted / "labelled.csv"), "-q"]) == 0
    assert "on labelled.csv" in capsys.readouterr().out


@pytest.mark.parametrize("args, match", [
    (["--student", "nope"], "cannot build the student"),
    (["--unlabeled", "EMPTY"], "has no rows"),
    (["--unlabeled", "TEST", "--text", "body"], "no column 'body'"),
    (["--data", "LABELLED"], "not the 500 rows"),
])
def test_cli_errors_are_one_line_and_write_nothing(fitted, capsys, args, match):
    (fitted / "empty.csv").write_text("id,text\n")
    names = {"EMPTY": "empty.csv", "TEST": "test.csv", "LABELLED": "labelled.csv"}
    args = [str(fitted / names[a]) if a in names else a for a in args]
    out = fitted / "never"
    assert main(["distill", str(fitted / "teacher"), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and match in err and "\n" not in err
    assert not out.exists()


def test_cli_refuses_a_student_as_teacher(fitted, capsys):
    assert main(["distill", str(fitted / "teacher"), "-o", str(fitted / "s1"), "--cv", "0",
                 "-q"]) == 0
    assert main(["distill", str(fitted / "s1"), "-o", str(fitted / "s2"), "--data",
                 str(fitted / "train.csv")]) == 2
    assert "use its teacher" in capsys.readouterr().err


def test_evaluate_compares_teacher_and_student_side_by_side(fitted, capsys):
    student = fitted / "student-compare"
    assert main(["distill", str(fitted / "teacher"), "-o", str(student), "--cv", "0",
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(fitted / "teacher"), str(fitted / "labelled.csv"),
                 "--compare", str(student), "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"teacher", "student-compare"}
    assert table["student-compare"]["kind"] == "distilled"
    assert table["teacher"]["kind"] == "ensemble"
    for row in table.values():
        assert 0.5 < row["accuracy"] <= 1 and row["rows_per_s"] > 0 and row["mb"] > 0
    assert table["student-compare"]["mb"] < table["teacher"]["mb"]
    assert main(["evaluate", str(fitted / "teacher"), "--compare", str(student)]) == 2
    assert "pass a CSV file" in capsys.readouterr().err


def test_a_signed_student_is_served_like_any_model(fitted, tmp_path):
    import httpx

    from engine.io.signing import generate_key, sign_model
    from engine.serving import create_app
    from tests.test_serving import running

    student = tmp_path / "student"
    assert main(["distill", str(fitted / "teacher"), "-o", str(student), "--cv", "0",
                 "-q"]) == 0
    private, public, _ = generate_key(tmp_path / "key.pem")
    with pytest.raises(Exception, match="not signed|unsigned"):
        load(student, verify_with=public)
    sign_model(student, private)
    assert load(student, verify_with=public).signer_
    with running(create_app(student)) as url:
        reply = httpx.post(f"{url}/predict", json={"texts": ["fire in the hills", "a calm day"]},
                           timeout=30)
        model = httpx.get(f"{url}/model", timeout=30).json()
    assert reply.status_code == 200 and len(reply.json()["labels"]) == 2
    assert [m["name"] for m in model["members"]] == ["student"]
