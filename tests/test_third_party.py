"""A real third-party package joins the registry through its entry point alone."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target),
                    str(ROOT / "examples" / "third_party_plugin")],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)
    # the engine under test (this checkout) with the plugin installed beside it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    return env


def test_ensemble_plugins_lists_it(installed):
    out = subprocess.run([str(BIN / "ensemble"), "plugins", "--json"], env=installed,
                         check=True, capture_output=True, text=True).stdout
    entries = {e["name"]: e for e in json.loads(out)}
    assert entries["char-svm"]["package"] == "ensemble-char-svm"
    assert entries["char-svm"]["version"] == "0.1.0"
    assert entries["tfidf-nb"]["package"] == "ensemble-engine"


def test_an_ensemble_uses_it_by_name_and_reloads_it(installed, tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np, pandas as pd
        from engine import Ensemble, load
        from engine.testing import check_plugin
        from engine.registry import get_plugin
        check_plugin(get_plugin("char-svm"))
        df = pd.read_csv("{ROOT}/examples/data/disaster-tweets/train.csv")
        df = df.sample(800, random_state=0)
        ens = Ensemble({{"svm": ("char-svm", {{"C": 0.5}}), "nb": "tfidf-nb"}},
                       combiner="stacking", cv=3, random_state=0).fit(df, df["target"])
        ens.save("{tmp_path}/m")
        again = load("{tmp_path}/m")
        assert np.array_equal(again.predict_proba(df), ens.predict_proba(df))
        print(again.manifest_["members"][0]["package"], round(ens.scores_["svm"]["accuracy"], 3))
    """)
    out = subprocess.run([sys.executable, "-c", script], env=installed, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0] == "ensemble-char-svm"
    assert float(out[1]) > 0.65


def test_without_the_package_loading_names_it(installed, tmp_path):
    subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import pandas as pd
        from engine import Ensemble
        df = pd.read_csv("{ROOT}/examples/data/disaster-tweets/train.csv").head(300)
        Ensemble({{"svm": "char-svm"}}, cv=3).fit(df, df["target"]).save("{tmp_path}/m")
    """)], env=installed, check=True, capture_output=True)
    result = subprocess.run([str(BIN / "ensemble"), "predict", str(tmp_path / "m"),
                             str(ROOT / "examples/data/disaster-tweets/test.csv"), "-o",
                             str(tmp_path / "p.csv")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "needs plugin 'char-svm' from package 'ensemble-char-svm'" in result.stderr
    assert "pip install ensemble-char-svm" in result.stderr
