"""`ensemble submit --competition`: upload through the kaggle package, or say what to run."""

import pandas as pd
import pytest

from engine.cli import main


@pytest.fixture
def kaggle_env(monkeypatch, tmp_path):
    """An empty Kaggle config dir and no credentials in the environment."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "kaggle").mkdir()
    return monkeypatch


@pytest.fixture(scope="module")
def model_and_files(tmp_path_factory, small_tweets):
    from engine import Ensemble

    root = tmp_path_factory.mktemp("kaggle")
    train, test = small_tweets.iloc[:400], small_tweets.iloc[400:]
    Ensemble({"nb": "tfidf-nb"}, cv=3, random_state=0, threshold="f1").fit(
        train, train["target"]).save(root / "model", {"text": "text", "id": "id"})
    test.drop(columns="target").to_csv(root / "test.csv", index=False)
    test[["id"]].assign(target=0).to_csv(root / "sample.csv", index=False)
    return root


def submit(root, *extra):
    return main(["submit", str(root / "model"), str(root / "test.csv"), "--sample",
                 str(root / "sample.csv"), "-o", str(root / "sub.csv"), *extra])


def test_summary_names_rows_balance_and_threshold(model_and_files, capsys):
    assert submit(model_and_files) == 0
    out = capsys.readouterr().out
    sub = pd.read_csv(model_and_files / "sub.csv")
    share = 100 * (sub["target"] == 1).mean()
    assert f"{len(sub)} rows" in out and f"1: {share:.1f}%" in out
    assert "threshold 0." in out and "on P(1)" in out


def test_uploads_with_credentials(model_and_files, kaggle_env, capsys):
    # kaggle 2.2.1 authenticates when imported: credentials first
    kaggle_env.setenv("KAGGLE_USERNAME", "someone")
    kaggle_env.setenv("KAGGLE_KEY", "0123456789abcdef")
    from kaggle.api.kaggle_api_extended import KaggleApi

    calls = []
    kaggle_env.setattr(KaggleApi, "competition_submit",
                       lambda self, file_name, message, competition, quiet=False:
                       calls.append((file_name, message, competition)))
    assert submit(model_and_files, "--competition", "nlp-getting-started",
                  "--message", "stacking v1") == 0
    assert calls == [(str(model_and_files / "sub.csv"), "stacking v1", "nlp-getting-started")]
    assert "uploaded to Kaggle competition 'nlp-getting-started'" in capsys.readouterr().out


def test_without_credentials_prints_the_command(model_and_files, kaggle_env, capsys):
    assert submit(model_and_files, "--competition", "nlp-getting-started",
                  "--message", "first try") == 0
    out = capsys.readouterr().out
    assert "nothing uploaded" in out
    assert (f"kaggle competitions submit -c nlp-getting-started -f "
            f"{model_and_files / 'sub.csv'} -m 'first try'") in out


def test_a_refused_upload_is_explained_and_the_file_kept(model_and_files, kaggle_env, capsys):
    kaggle_env.setenv("KAGGLE_USERNAME", "someone")
    kaggle_env.setenv("KAGGLE_KEY", "0123456789abcdef")
    from kaggle.api.kaggle_api_extended import KaggleApi

    def refuse(self, *args, **kwargs):
        raise RuntimeError("403 Client Error: Forbidden")

    kaggle_env.setattr(KaggleApi, "competition_submit", refuse)
    assert submit(model_and_files, "--competition", "nlp-getting-started") == 2
    err = capsys.readouterr().err.strip()
    assert "Kaggle did not accept the upload" in err and "403" in err and "\n" not in err
    assert (model_and_files / "sub.csv").is_file()


def test_message_without_competition_is_refused(model_and_files, capsys):
    assert submit(model_and_files, "--message", "hello") == 2
    assert "--message goes with --competition" in capsys.readouterr().err
