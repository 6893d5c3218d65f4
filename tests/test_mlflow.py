"""MLflow for real: a SQLite tracking store in tmp_path, no mocks."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install '.[mlflow]'")
from mlflow.tracking import MlflowClient  # noqa: E402

import engine.mlflow  # noqa: E402
from engine import Ensemble, load  # noqa: E402
from engine.cli import main  # noqa: E402
from engine.errors import ModelDirectoryError  # noqa: E402
from engine.report import write_report  # noqa: E402
from tests.helpers import write_config  # noqa: E402

# MLflow's advice to add type hints to predict: the logged signature is the schema instead.
pytestmark = pytest.mark.filterwarnings("ignore:.*Add type hints:UserWarning")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh SQLite tracking store; artifacts land under tmp_path/mlruns."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def fitted(small_tweets):
    ens = Ensemble({"nb": "tfidf-nb", "lr": "tfidf-lr"}, combiner="stacking", cv=3,
                   member_text={"nb": ["keyword", "text"]}, fill_na="", random_state=0)
    return ens.fit(small_tweets, small_tweets["target"])


def test_pyfunc_predict_is_engine_load_predict_proba(store, fitted, small_tweets, tmp_path):
    fitted.save(tmp_path / "tweets", {"text": "text", "id": "id", "fill_na": ""})
    frame = small_tweets[["keyword", "text"]].iloc[100:160].fillna("")
    expected = load(tmp_path / "tweets").predict_proba(frame)
    with mlflow.start_run():
        from_object = engine.mlflow.log_model(fitted, name="from-object",
                                              input_example=small_tweets)
        from_directory = engine.mlflow.log_model(tmp_path / "tweets", name="from-directory")
    for info in (from_object, from_directory):
        served = mlflow.pyfunc.load_model(info.model_uri)
        predicted = served.predict(frame)
        assert isinstance(predicted, np.ndarray) and predicted.dtype == np.float64
        np.testing.assert_array_equal(predicted, expected)
        assert served.metadata.metadata["classes"] == [0, 1]
        schema = served.metadata.get_input_schema()
        assert schema.input_names() == ["keyword", "text"]
        assert served.metadata.get_output_schema() is not None
        local = Path(MlflowClient().get_logged_model(info.model_id).artifact_location
                     .removeprefix("file://"))
        files = [p.name for p in local.rglob("*") if p.is_file()]
        assert "input_example.json" in files and "manifest.json" in files
        assert "model_code.py" in {p.name for p in local.rglob("*.py")}
        assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))], files
        if info is from_object:
            example = json.loads((local / "input_example.json").read_text())
            assert example["columns"] == ["keyword", "text"] and len(example["data"]) == 3


def test_a_changed_model_file_is_refused_at_load(store, fitted, tmp_path):
    with mlflow.start_run():
        info = engine.mlflow.log_model(fitted, name="model")
    manifests = list((tmp_path / "mlruns").rglob("manifest.json"))
    assert len(manifests) == 1
    target = next(p for p in sorted(manifests[0].parent.joinpath("members").rglob("*"))
                  if p.is_file())
    target.write_bytes(target.read_bytes() + b"\0")
    with pytest.raises(ModelDirectoryError, match="changed since it was saved"):
        mlflow.pyfunc.load_model(info.model_uri)


@pytest.fixture
def config(tmp_path, small_tweets):
    small_tweets.to_csv(tmp_path / "train.csv", index=False)
    return write_config(tmp_path / "tweets.toml", tmp_path / "train.csv",
                        data={"fill_na": ""},
                        members={"nb": {"plugin": "tfidf-nb", "text": ["keyword", "text"],
                                        "alpha": 0.5}})


def test_fit_mlflow_logs_one_run_and_registers_the_model(tmp_path, monkeypatch, config,
                                                         small_tweets, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["-q", "fit", str(config), "-o", str(tmp_path / "model"), "--mlflow",
                 "--register", "tweets-classifier"]) == 0
    out = capsys.readouterr().out
    assert "logged MLflow run" in out and "sqlite:///mlruns.db" in out
    assert (tmp_path / "mlruns.db").is_file()  # the default store, in the working directory

    client = MlflowClient(tracking_uri="sqlite:///mlruns.db")
    experiment = client.get_experiment_by_name("tweets")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert run.data.params["members.nb.plugin"] == "tfidf-nb"
    assert run.data.params["members.nb.alpha"] == "0.5"
    assert run.data.params["members.lr.plugin"] == "tfidf-lr"
    assert run.data.params["combiner"] == "stacking"
    assert run.data.params["ensemble.cv"] == "3"
    for model in ("nb", "lr", "ensemble"):
        for metric in ("accuracy", "f1_positive", "log_loss"):
            assert run.data.metrics[f"oof.{model}.{metric}"] == pytest.approx(
                manifest["scores"][model][metric], rel=1e-12)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config", "leaderboard.json", "leaderboard.csv", "report.html"} <= artifacts
    assert [a.path for a in client.list_artifacts(run.info.run_id, "config")] == \
        ["config/tweets.toml"]
    table = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="leaderboard.csv", dst_path=str(tmp_path / "lb")))
    assert {"nb", "lr", "ensemble (stacking)"} <= set(table["model"])
    report = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/report.html")
    assert "out-of-fold" in report and "<img" in report

    versions = client.search_model_versions("name='tweets-classifier'")
    assert [str(v.version) for v in versions] == ["1"] and versions[0].run_id == run.info.run_id
    mlflow.set_tracking_uri("sqlite:///mlruns.db")
    try:
        served = mlflow.pyfunc.load_model("models:/tweets-classifier/1")
    finally:
        mlflow.set_tracking_uri(None)
    frame = small_tweets[["keyword", "text"]].head(30).fillna("")
    np.testing.assert_array_equal(served.predict(frame),
                                  load(tmp_path / "model").predict_proba(frame))


def test_tracking_uri_option_and_environment(tmp_path, monkeypatch, config, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'from-env.db'}")
    assert engine.mlflow.tracking_uri() == f"sqlite:///{tmp_path / 'from-env.db'}"
    assert engine.mlflow.tracking_uri("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert engine.mlflow.tracking_uri() == "sqlite:///mlruns.db"
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert main(["-q", "fit", str(config), "-o", str(tmp_path / "m"), "--mlflow",
                 "--tracking-uri", uri, "--experiment", "exp-2"]) == 0
    assert not (tmp_path / "mlruns.db").exists()
    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name("exp-2")
    assert len(MlflowClient(tracking_uri=uri).search_runs([experiment.experiment_id])) == 1


def test_missing_extra_fails_before_fitting(tmp_path, monkeypatch, config, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    assert main(["fit", str(config), "-o", str(tmp_path / "never"), "--mlflow"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'ensemble-engine[mlflow]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_register_needs_mlflow(tmp_path, config, capsys):
    assert main(["fit", str(config), "-o", str(tmp_path / "never"), "--register", "x"]) == 2
    assert "go with --mlflow" in capsys.readouterr().err


def test_out_of_fold_report_of_a_loaded_model(fitted, small_tweets, tmp_path):
    """A loaded model keeps no out-of-fold combiner outputs; the report recomputes them."""
    fitted.save(tmp_path / "m")
    path = write_report(load(tmp_path / "m"), small_tweets, small_tweets["target"],
                        tmp_path / "report.html", out_of_fold=True)
    html = path.read_text()
    assert "scored out-of-fold" in html and "prediction time" not in html
    with pytest.raises(ValueError, match="training rows"):
        write_report(fitted, small_tweets.head(50), small_tweets["target"].head(50),
                     tmp_path / "r2.html", out_of_fold=True)


def test_requirements_come_from_the_installed_plugins_never_the_directory(store, fitted,
                                                                          tmp_path):
    fitted.save(tmp_path / "tweets", {"text": "text", "fill_na": ""})
    manifest = json.loads((tmp_path / "tweets" / "manifest.json").read_text())
    for part in [*manifest["members"], manifest["combiner"]]:  # a stranger's packages
        part.update(package="ensemble-engine-fast-tfidf", version="6.6.6")
    (tmp_path / "tweets" / "manifest.json").write_text(json.dumps(manifest))
    mlflow.set_experiment("requirements")  # an earlier test's active experiment is elsewhere
    with mlflow.start_run():
        info = engine.mlflow.log_model(tmp_path / "tweets", name="model")
    local = Path(MlflowClient().get_logged_model(info.model_id).artifact_location
                 .removeprefix("file://"))
    requirements = (local / "requirements.txt").read_text().split()
    assert f"ensemble-engine=={engine.__version__}" in requirements
    assert not [r for r in requirements if "fast-tfidf" in r or "6.6.6" in r], requirements
