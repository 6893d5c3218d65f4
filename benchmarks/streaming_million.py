"""A million tweets through the full default ensemble: rows/s and memory over the whole run.

Not part of `make bench` (it takes about 25 minutes on 2 cores). Uses the demo's ensemble
(examples/disaster_tweets.toml) fitted on train.csv by members.py, or fits it, then
times `ensemble predict --chunk-size 20000` on the 1,000,000-row file of
benchmarks/streaming.py with an empty feature cache,
sampling the resident memory of the process and its workers every 50 ms. The table shows
the peak memory in each tenth of the run: flat means memory does not grow with the file.

Run: .venv/bin/python benchmarks/streaming_million.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_MODEL, ROOT, report  # noqa: E402
from streaming import ENSEMBLE, make_csv, peak_of  # noqa: E402

CHUNK = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_csv(tmp / "million.csv", args.rows)
        full = DEFAULT_MODEL  # left by members.py (make bench); fitted here otherwise
        if not (full / "manifest.json").is_file():
            full = tmp / "full"
            os.environ["ENSEMBLE_CACHE_DIR"] = str(tmp / "cache")
            subprocess.run([*ENSEMBLE, "fit", str(ROOT / "examples" / "disaster_tweets.toml"),
                            "-o", str(full)], check=True, cwd=ROOT)
        os.environ["ENSEMBLE_CACHE_DIR"] = str(tmp / "empty-cache")
        timeline: list[tuple[float, float]] = []
        seconds, peak = peak_of(["predict", str(full), str(tmp / "million.csv"),
                                 "-o", str(tmp / "out.csv"), "--chunk-size", str(CHUNK)],
                                timeline)
        out = pd.read_csv(tmp / "out.csv", usecols=["id"])
        assert len(out) == args.rows and out["id"].is_unique, len(out)
        cache_files = sum(1 for p in (tmp / "empty-cache").rglob("*") if p.is_file()) \
            if (tmp / "empty-cache").exists() else 0
    tenths = pd.Series([mb for _, mb in timeline],
                       index=pd.cut([t for t, _ in timeline], 10, labels=range(1, 11)))
    by_tenth = tenths.groupby(level=0, observed=True).max()
    data = {"rows": args.rows, "chunk_size": CHUNK, "seconds": seconds,
            "rows_per_s": args.rows / seconds, "peak_rss_mb": peak,
            "peak_rss_mb_by_tenth": by_tenth.round(0).tolist(),
            "cache_files_written": cache_files}
    rows = [f"| {args.rows:,} | {seconds:,.0f} | {args.rows / seconds:,.0f} | >= 500 | "
            f"{peak:,.0f} | < 2,048 |"]
    report("streaming_million", "A million tweets through the full default ensemble", [
        f"`ensemble predict MODEL million.csv -o out.csv --chunk-size {CHUNK}` with the demo's",
        "five members and stacking, in a fresh process with an empty feature cache, timed end",
        "to end. Peak RSS sums the process and its workers, sampled every 50 ms.",
    ], ["rows", "seconds", "rows/s", "target", "peak RSS MB", "target"], rows, data, extra=[
        "", "Peak RSS (MB) in each tenth of the run: "
        + ", ".join(f"{mb:,.0f}" for mb in by_tenth),
        "", f"Feature-cache files written by prediction: {cache_files} (not filled unless asked).",
    ])


if __name__ == "__main__":
    main()
