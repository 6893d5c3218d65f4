"""Shared set-up for the benchmark scripts: the reference split and result writing."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from engine.data import holdout_split

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TRAIN = ROOT / "examples" / "data" / "disaster-tweets" / "train.csv"
# members.py fits the default ensemble on all of train.csv for its CV5 score and leaves it
# here; streaming.py predicts with it instead of fitting the same model a second time.
DEFAULT_MODEL = ROOT / "benchmarks" / ".work" / "default-ensemble"


ENSEMBLE = [sys.executable, "-m", "engine.cli", "-q"]


def default_model(tmp: Path) -> Path:
    """The default ensemble fitted on all of train.csv: members.py's, else fitted into ``tmp``."""
    config = ROOT / "examples" / "disaster_tweets.toml"
    full = DEFAULT_MODEL
    if not (full / "manifest.json").is_file() or \
            (full / "manifest.json").stat().st_mtime < config.stat().st_mtime:
        full = tmp / "full"  # members.py has not left an up-to-date one: fit it here
        subprocess.run([*ENSEMBLE, "fit", str(config), "-o", str(full)], check=True, cwd=ROOT)
    return full


def reference_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tutorial's split: 6,851 training and 762 validation tweets."""
    return holdout_split(pd.read_csv(TRAIN), 0.1, 42)


def machine() -> str:
    return (f"{cpu_name()}, {platform.machine()}, {os.cpu_count()} cores ({vector_units()}), "
            f"Python {platform.python_version()}")


def cpu_name() -> str:
    """The CPU's model name as the kernel reports it (``lscpu``'s "Model name")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def vector_units() -> str:
    """The CPU's widest vector and bf16 units: matrix-product speed differs 2-6x between them."""
    from numpy._core._multiarray_umath import __cpu_features__ as has

    widest = "AVX-512" if has.get("AVX512F") else "AVX2" if has.get("AVX2") else "no AVX2"
    return f"{widest}, {'native' if has.get('AVX512BF16') else 'no'} bf16"


def report(name: str, title: str, intro: list[str], header: list[str], rows: list[str],
           data: dict, extra: list[str] | None = None) -> None:
    """Write ``results/<name>.md`` (title, intro, table, extra lines) and ``.json``; print it."""
    markdown = "\n".join([f"# {title}", "", *intro, "",
                           "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                           *rows, *(extra or [])])
    write_results(name, markdown, data)
    print(markdown)


def write_results(name: str, markdown: str, data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    (RESULTS / f"{name}.md").write_text(f"{markdown}\n\nMeasured {stamp} on {machine()}.\n")
    (RESULTS / f"{name}.json").write_text(json.dumps({"date": stamp, "machine": machine(),
                                                      **data}, indent=2))
