import os
import re
import shutil
from pathlib import Path

import pytest

from engine import Ensemble
from engine.cli import main
from engine.report import build_report, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


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
    for heading in ["Leaderboard", "f1 positive by model", "Score against prediction time",
                    "Confusion matrices", "Per-class precision and recall",
                    "Training curves of the Keras members", "Precision/recall curve",
                    "False positives (most confident)", "False negatives (most confident)"]:
        assert f"<h2>{heading}" in html, heading
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', html)) == 6
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from a network
    assert "<script" not in html
    assert f"threshold {ens.threshold_:.3f}" in html


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
    """Every chart loads and nothing errors in headless Chromium; keeps a screenshot."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is not installed: apt-get install chromium"
    ens, valid = report_inputs
    path = write_report(ens, valid, valid["target"], tmp_path / "report.html")
    shots = Path(os.environ.get("ENSEMBLE_SCREENSHOT_DIR", tmp_path))
    errors, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.resolve().as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => "
                               "({alt: i.alt, ok: i.complete && i.naturalWidth > 100}))")
        page.screenshot(path=str(shots / "report.png"), full_page=True)
        browser.close()
    assert len(images) == 6 and all(i["ok"] for i in images), images
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert (shots / "report.png").stat().st_size > 50_000
