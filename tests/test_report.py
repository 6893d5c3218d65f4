import os
import re

import pytest

from engine import Ensemble
from engine.cli import main
from engine.report import build_report, write_report
from tests.helpers import chromium_path, render_in_browser

CHROMIUM = chromium_path()


@pytest.fixture(scope="module")
def report_inputs(small_tweets):
    train, valid = small_tweets.iloc[:450], small_tweets.iloc[450:]
    members = {"nb": "tfidf-nb", "lr": "tfidf-lr",
               "dense": ("keras-text", {"architecture": "dense", "epochs": 2,
                                        "validation_split": 0.1})}
    ens = Ensemble(members, combiner="stacking", cv=3, random_state=0, threshold="f1")
    return ens.fit(train, train["target"]), valid


def test_report_is_one_self_contained_page_with_every_section(report_inputs):
    ens, valid = report_inputs
    html = build_report(ens, valid, valid["target"], title="tweets")
    for heading in ["Leaderboard", "F1 of the positive class &#x27;1&#x27; by model",
                    "Score against prediction time",
                    "Confusion matrices", "Per-class precision and recall",
                    "Training curves of the Keras members", "Precision/recall curve",
                    "False positives (most confident)", "False negatives (most confident)"]:
        assert f"<h2>{heading}" in html, heading
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', html)) == 6
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from a network
    assert "<script" not in html
    assert f"threshold {ens.threshold_:.3f}" in html
    assert "Dashed: the validation split" in html  # dense held out 10%, so its curves are drawn


def test_report_escapes_tweet_text(report_inputs):
    ens, valid = report_inputs
    hostile = valid.copy()
    hostile["text"] = "<script>alert(1)</script> fire " + hostile["text"]
    html = build_report(ens, hostile, hostile["target"])
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html


def test_report_command_writes_the_file(report_inputs, tmp_path, capsys):
    ens, valid = report_inputs
    ens.save(tmp_path / "model", {"text": "text", "label": "target", "id": "id"})
    valid.to_csv(tmp_path / "valid.csv", index=False)
    assert main(["report", str(tmp_path / "model"), str(tmp_path / "valid.csv"),
                 "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("data:image/png") == 6
    assert "wrote" in capsys.readouterr().out


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"),
                    reason="needs Debian's chromium (make test installs it)")
def test_report_renders_in_a_real_browser(report_inputs, tmp_path):
    """Every chart loads and nothing errors in headless Chromium."""
    ens, valid = report_inputs
    path = write_report(ens, valid, valid["target"], tmp_path / "report.html")
    seen = render_in_browser(path, tmp_path / "report.png")
    assert len(seen["images"]) == 6 and all(i["ok"] for i in seen["images"]), seen["images"]
    assert seen["errors"] == []
    assert all(url.startswith(("file:", "data:")) for url in seen["requests"]), seen["requests"]
    assert (tmp_path / "report.png").stat().st_size > 50_000
