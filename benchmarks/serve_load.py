"""Load test of `ensemble serve`: rows/s and latency with 1, 8 and 64 concurrent clients.

Starts the real command (`ensemble serve MODEL --port 0`) for the default ensemble
(examples/disaster_tweets.toml) and for `tfidf-nb` alone, and sends it a fixed number
of `POST /predict` requests of 32 tweets each (rows with keyword and text, as
`ensemble predict` reads them), from 1, 8 and 64 concurrent clients, over loopback only,
each scenario capped in time. Reports rows/s, p50/p95/p99 latency, the mean micro-batch
and failed requests (the target is none). In the same run, `ensemble predict` scores the
rows of the 64-client scenario as a CSV file; target: served rows/s >= 0.8x its rows/s.

No text occurs twice in a scenario or a pair: the sentence member encodes each distinct
text of a call once, so duplicates would favour `ensemble predict` (one call on the whole
file) over the server (batches of up to 1,024 rows). `ensemble predict`'s rate once
started is timed directly: the CLI's `main` runs twice in one process, first on other
rows (imports, model load, first call), then timed on the pair's rows.

Run: .venv/bin/python benchmarks/serve_load.py [--time-cap 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENSEMBLE, ROOT, TRAIN, default_model, report  # noqa: E402

TEXTS_PER_REQUEST = 32
CLIENTS = (1, 8, 64)
# requests per scenario: enough for stable percentiles, bounded in time by --time-cap
REQUESTS = {"default ensemble": {1: 30, 8: 64, 64: 128},
            "tfidf-nb": {1: 300, 8: 1000, 64: 2000}}
SMALL = 512  # other rows: `ensemble predict`'s first call in its process (its start-up)
PAIRS = 5  # served against `ensemble predict`: back-to-back pairs, median ratio (noisy: 5)
PAIR_REQUESTS = 128  # 64 clients x 2 requests each: 4,096 rows per measurement


# `ensemble predict` run twice in one process; prints the seconds of each run as JSON
PREDICT_TWICE = """
import json, sys, time
from engine.cli import main
model, first, second, out = sys.argv[1:]
seconds = []
for data in (first, second):
    start = time.perf_counter()
    if main(["-q", "predict", model, data, "-o", out]) != 0:
        sys.exit(2)
    seconds.append(time.perf_counter() - start)
print(json.dumps(seconds))
"""


def tweets(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` tweets (id, keyword, location, text) from train.csv and test.csv.

    The distinct tweets in a random order: no text twice in the first 10,678 rows
    (then again, in another order, as often as ``n`` needs).
    """
    pool = pd.concat([pd.read_csv(TRAIN), pd.read_csv(TRAIN.with_name("test.csv"))])
    pool = pool[["keyword", "location", "text"]].drop_duplicates("text")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(pool)) for _ in range(-(-n // len(pool)))])
    rows = pool.iloc[order[:n]].reset_index(drop=True)
    rows.insert(0, "id", np.arange(n))
    return rows


def bodies(frame: pd.DataFrame) -> list[dict]:
    """One JSON body per 32 rows; missing keywords as null (the model fills them)."""
    records = frame[["keyword", "text"]].astype(object).where(frame.notna(), None)
    records = records.to_dict("records")
    return [{"rows": records[i:i + TEXTS_PER_REQUEST]}
            for i in range(0, len(records), TEXTS_PER_REQUEST)]


class Server:
    """`ensemble serve MODEL --port 0` in a subprocess, on 127.0.0.1."""

    def __init__(self, model: Path) -> None:
        self.process = subprocess.Popen(
            [*ENSEMBLE, "serve", str(model), "--host", "127.0.0.1", "--port", "0",
             "--log-level", "warning"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL)
        line = self.process.stdout.readline()
        if " on http://" not in line:
            raise RuntimeError(f"ensemble serve did not start: {line!r}")
        self.url = line.split(" on ")[1].split()[0]

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=30).json()["batches"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


async def scenario(url: str, work: list[dict], clients: int, cap: float) -> dict:
    """Send ``work`` with ``clients`` concurrent clients; stop at ``cap`` seconds."""
    latencies, failures, rows = [], [], 0
    queue = list(reversed(work))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=cap, limits=limits) as client:
        start = time.perf_counter()

        async def one_client() -> None:
            nonlocal rows
            while queue and time.perf_counter() - start < cap:
                body = queue.pop()
                sent = time.perf_counter()
                try:
                    answer = await client.post("/predict", json=body)
                    if answer.status_code != 200 or \
                            len(answer.json()["labels"]) != len(body["rows"]):
                        failures.append(f"{answer.status_code}: {answer.text[:200]}")
                        continue
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                latencies.append(time.perf_counter() - sent)
                rows += len(body["rows"])

        await asyncio.gather(*(one_client() for _ in range(clients)))
        seconds = time.perf_counter() - start
    ms = 1000 * np.array(latencies or [np.nan])
    return {"clients": clients, "requests": len(latencies) + len(failures),
            "planned": len(work), "failed": len(failures), "failures": failures[:5],
            "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "capped": bool(queue)}


def load_test(name: str, model: Path, frame: pd.DataFrame, cap: float) -> list[dict]:
    server = Server(model)
    try:
        warm = bodies(frame.head(4 * TEXTS_PER_REQUEST))
        asyncio.run(scenario(server.url, warm, 4, cap))  # first calls build graphs, caches
        results, offset = [], 0
        for clients in CLIENTS:
            n = REQUESTS[name][clients]
            work = bodies(frame.iloc[offset:offset + n * TEXTS_PER_REQUEST])
            offset += n * TEXTS_PER_REQUEST
            before = server.stats()
            result = asyncio.run(scenario(server.url, work, clients, cap))
            after = server.stats()
            batches = after["batches"] - before["batches"]
            result.update(model=name, mean_batch_rows=(after["rows"] - before["rows"])
                          / max(batches, 1))
            print(f"{name}, {clients} clients: {result['rows_per_s']:,.0f} rows/s, p50 "
                  f"{result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, "
                  f"{result['failed']} failed", flush=True)
            results.append(result)
        return results
    finally:
        server.stop()


def paired(model: Path, tmp: Path, cap: float) -> list[dict]:
    """Served (64 clients) and `ensemble predict` rows/s on the same rows, back to back.

    The machine is shared with other jobs whose load comes and goes, so each pair
    runs the two within a minute or two of each other, in alternating order, and
    the ratio is per pair. Each pair has its own distinct tweets.
    """
    server, pairs = Server(model), []
    try:
        warm = tweets(4 * TEXTS_PER_REQUEST + SMALL, seed=100)
        asyncio.run(scenario(server.url, bodies(warm.head(4 * TEXTS_PER_REQUEST)), 4, cap))
        for i in range(PAIRS):
            rows = tweets(PAIR_REQUESTS * TEXTS_PER_REQUEST, seed=1 + i)
            load = {"before": os.getloadavg()[0]}
            if i % 2 == 0:
                cli = cli_predict(model, rows, warm.tail(SMALL), tmp)  # the server idles
                served = asyncio.run(scenario(server.url, bodies(rows), 64, cap))
            else:
                served = asyncio.run(scenario(server.url, bodies(rows), 64, cap))
                cli = cli_predict(model, rows, warm.tail(SMALL), tmp)
            load["after"] = os.getloadavg()[0]
            pair = {"cli": cli, "served": served, "first": "cli" if i % 2 == 0 else "served",
                    "load_average": load,
                    "ratio": served["rows_per_s"] / cli["marginal_rows_per_s"],
                    "ratio_end_to_end": served["rows_per_s"] / cli["rows_per_s"]}
            print(f"pair {i + 1}: served {served['rows_per_s']:,.0f} rows/s, ensemble predict "
                  f"{cli['marginal_rows_per_s']:,.0f} once started: {pair['ratio']:.2f}x",
                  flush=True)
            pairs.append(pair)
        return pairs
    finally:
        server.stop()


def cli_predict(model: Path, frame: pd.DataFrame, other: pd.DataFrame, tmp: Path) -> dict:
    """`ensemble predict` on ``frame``: end to end, and once started (timed directly).

    Once started: the CLI's ``main`` in one process, first on ``other`` rows (imports,
    model load and first call: its start-up), then timed on ``frame``.
    """
    full, small, out = tmp / "predict-full.csv", tmp / "predict-other.csv", tmp / "out.csv"
    frame.to_csv(full, index=False)
    other.to_csv(small, index=False)
    start = time.perf_counter()
    subprocess.run([*ENSEMBLE, "predict", str(model), str(full), "-o", str(out)], check=True,
                   cwd=ROOT, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    assert len(pd.read_csv(out)) == len(frame)
    done = subprocess.run([sys.executable, "-c", PREDICT_TWICE, str(model), str(small),
                           str(full), str(out)], check=True, cwd=ROOT, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(pd.read_csv(out)) == len(frame)
    return {"rows": len(frame), "seconds": seconds, "rows_per_s": len(frame) / seconds,
            "startup_seconds": first, "startup_rows": len(other),
            "started_seconds": second, "marginal_rows_per_s": len(frame) / second}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-cap", type=float, default=120,
                        help="seconds one scenario may take (default 120)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["ENSEMBLE_CACHE_DIR"] = str(tmp / "cache")
        full = default_model(tmp)
        (tmp / "nb.toml").write_text(f'name = "nb"\n[data]\ntrain = "{TRAIN}"\n'
                                     f'[ensemble]\ncv = 5\nrandom_state = 42\n'
                                     f'[members.nb]\nplugin = "tfidf-nb"\n')
        subprocess.run([*ENSEMBLE, "fit", str(tmp / "nb.toml"), "-o", str(tmp / "nb")],
                       check=True, cwd=ROOT)
        # empty cache for the texts to predict (fitting cached the training tweets')
        os.environ["ENSEMBLE_CACHE_DIR"] = str(tmp / "empty-cache")
        frame = tweets(max(sum(r.values()) for r in REQUESTS.values()) * TEXTS_PER_REQUEST
                       + 4 * TEXTS_PER_REQUEST)
        results = load_test("default ensemble", full, frame, args.time_cap)
        pairs = paired(full, tmp, args.time_cap)
        results += load_test("tfidf-nb", tmp / "nb", frame, args.time_cap)

    ratio = float(np.median([pair["ratio"] for pair in pairs]))
    pair_size = PAIR_REQUESTS * TEXTS_PER_REQUEST
    ratio_end_to_end = float(np.median([pair["ratio_end_to_end"] for pair in pairs]))
    failed = sum(r["failed"] for r in results) + sum(p["served"]["failed"] for p in pairs)
    pair_rows = [f"| {i + 1} | {p['first']} | {p['cli']['rows']:,} | "
                 f"{p['cli']['seconds']:.1f} | {p['cli']['startup_seconds']:.1f} | "
                 f"{p['cli']['started_seconds']:.1f} | {p['cli']['marginal_rows_per_s']:,.0f} | "
                 f"{p['served']['rows_per_s']:,.0f} | {p['served']['p50_ms']:,.0f} | "
                 f"{p['served']['failed']} | {p['load_average']['before']:.1f}-"
                 f"{p['load_average']['after']:.1f} | {p['ratio']:.2f} |"
                 for i, p in enumerate(pairs)]
    rows = [f"| {r['model']} | {r['clients']} | {r['requests']:,} | {r['failed']} | "
            f"{r['rows_per_s']:,.0f} | {r['p50_ms']:,.0f} | {r['p95_ms']:,.0f} | "
            f"{r['p99_ms']:,.0f} | {r['mean_batch_rows']:,.0f} |" for r in results]
    report("serve_load", "Serving under load: `ensemble serve`", [
        "`ensemble serve MODEL --port 0 --log-level warning` in a subprocess on 127.0.0.1",
        f"(default `--threads`: {os.cpu_count()}); each request is `POST /predict` with "
        f"{TEXTS_PER_REQUEST} rows",
        "(keyword and text) of tweets from the competition's train and test files, no text",
        "twice in the default ensemble's scenarios (tfidf-nb's larger ones go over the 10,678",
        "distinct tweets several times); clients are asyncio tasks on one httpx client in this",
        f"process, so the load generator shares the {os.cpu_count()} cores with the server. A "
        "fixed number of requests",
        f"per scenario, each scenario capped at {args.time_cap:.0f} s; the server was warmed "
        "up with 4 requests first.",
        "Latency is per request, from sending to the parsed answer; mean batch = rows per",
        "predict call (GET /health).",
    ], ["model", "clients", "requests", "failed", "rows/s", "p50 ms", "p95 ms", "p99 ms",
        "mean batch"], rows, {"scenarios": results,
                              "pairs": pairs, "ratio_vs_predict_once_started": ratio,
                              "ratio_vs_predict_end_to_end": ratio_end_to_end,
                              "failed_requests": failed}, extra=[
        "",
        f"**Served against `ensemble predict`, same machine, same run.** {PAIRS} back-to-back "
        f"pairs on the default ensemble, each on its own {pair_size:,} distinct tweets, both "
        f"sides on the same rows, in alternating order: `ensemble predict` on them as a CSV "
        f"end to end; `ensemble predict` once started, timed directly (the CLI's `main` run "
        f"twice in one process: first on {SMALL} other rows, its start-up of imports, model "
        f"load and first call, then on the pair's rows); the same rows served to 64 clients "
        f"x {TEXTS_PER_REQUEST} texts (the server already running and warm). Load = the "
        f"machine's 1-minute load average before and after the pair (other jobs share it).",
        "",
        "| pair | first | rows | predict s end to end | predict start-up s | "
        "predict s once started | predict rows/s once started | served rows/s | "
        "served p50 ms | failed | load | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *pair_rows,
        "",
        f"Median ratio: **{ratio:.2f}x** the rate of `ensemble predict` once started (target "
        f"0.8); {ratio_end_to_end:.2f}x its end-to-end rate.",
        "",
        f"Failed requests over all scenarios: {failed} (target 0)."
        + (" Some scenarios hit the time cap." if any(r["capped"] for r in results) else ""),
    ])


if __name__ == "__main__":
    main()
