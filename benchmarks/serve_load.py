"""Load test of `ensemble serve`: rows/s and latency with 1, 8 and 64 concurrent clients.

Starts the real command (`ensemble serve MODEL --port 0`) for the default ensemble
(examples/disaster_tweets.toml) and for `tfidf-nb` alone, and sends it a fixed number
of `POST /predict` requests of 32 tweets each (rows with keyword and text, as
`ensemble predict` reads them), from 1, 8 and 64 concurrent clients, over loopback only,
each scenario capped in time. Reports rows/s, p50/p95/p99 latency, the mean micro-batch
and failed requests (the target is none). In the same run, `ensemble predict` scores the
rows of the 64-client scenario as a CSV file; target: served rows/s >= 0.8x its rows/s.

Run: .venv/bin/python benchmarks/serve_load.py [--time-cap 120]
"""

from __future__ import annotations

import argparse
import asyncio
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
SMALL = 512  # rows: `ensemble predict` on these measures its start-up
PAIRS = 3  # served against `ensemble predict`: back-to-back pairs, median ratio
PAIR_REQUESTS = 128  # 64 clients x 2 requests each: 4,096 rows per measurement


def tweets(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` tweets (id, keyword, location, text) sampled from train.csv and test.csv."""
    pool = pd.concat([pd.read_csv(TRAIN), pd.read_csv(TRAIN.with_name("test.csv"))])
    pool = pool[["keyword", "location", "text"]].reset_index(drop=True)
    rows = pool.iloc[np.random.default_rng(seed).integers(0, len(pool), n)]
    rows = rows.reset_index(drop=True)
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


def paired(model: Path, frame: pd.DataFrame, tmp: Path, cap: float) -> list[dict]:
    """Served (64 clients) and `ensemble predict` rows/s on the same rows, back to back.

    The machine is shared with other jobs whose load comes and goes, so each pair
    runs the two within a minute or two of each other and the ratio is per pair.
    """
    server, pairs = Server(model), []
    try:
        asyncio.run(scenario(server.url, bodies(frame.head(4 * TEXTS_PER_REQUEST)), 4, cap))
        for i in range(PAIRS):
            start = 4 * TEXTS_PER_REQUEST + i * PAIR_REQUESTS * TEXTS_PER_REQUEST
            rows = frame.iloc[start:start + PAIR_REQUESTS * TEXTS_PER_REQUEST]
            cli = cli_predict(model, rows, tmp)  # the server idles meanwhile
            served = asyncio.run(scenario(server.url, bodies(rows), 64, cap))
            pair = {"cli": cli, "served": served,
                    "ratio": served["rows_per_s"] / cli["marginal_rows_per_s"],
                    "ratio_end_to_end": served["rows_per_s"] / cli["rows_per_s"]}
            print(f"pair {i + 1}: served {served['rows_per_s']:,.0f} rows/s, ensemble predict "
                  f"{cli['marginal_rows_per_s']:,.0f} once started: {pair['ratio']:.2f}x",
                  flush=True)
            pairs.append(pair)
        return pairs
    finally:
        server.stop()


def cli_predict(model: Path, frame: pd.DataFrame, tmp: Path) -> dict:
    """`ensemble predict` end to end on ``frame`` and on SMALL rows (its start-up)."""
    timings = {}
    for n, rows in (("small", frame.head(SMALL)), ("full", frame)):
        path = tmp / f"predict-{n}.csv"
        rows.to_csv(path, index=False)
        start = time.perf_counter()
        subprocess.run([*ENSEMBLE, "predict", str(model), str(path), "-o",
                        str(tmp / "out.csv")], check=True, cwd=ROOT, stdin=subprocess.DEVNULL)
        timings[n] = time.perf_counter() - start
    written = len(pd.read_csv(tmp / "out.csv"))
    assert written == len(frame), (written, len(frame))
    marginal = (len(frame) - SMALL) / (timings["full"] - timings["small"])
    return {"rows": len(frame), "seconds": timings["full"], "small_seconds": timings["small"],
            "rows_per_s": len(frame) / timings["full"], "marginal_rows_per_s": marginal}


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
        pairs = paired(full, tweets(PAIRS * PAIR_REQUESTS * TEXTS_PER_REQUEST
                                    + 4 * TEXTS_PER_REQUEST, seed=1), tmp, args.time_cap)
        results += load_test("tfidf-nb", tmp / "nb", frame, args.time_cap)

    ratio = float(np.median([pair["ratio"] for pair in pairs]))
    pair_size = PAIR_REQUESTS * TEXTS_PER_REQUEST
    ratio_end_to_end = float(np.median([pair["ratio_end_to_end"] for pair in pairs]))
    failed = sum(r["failed"] for r in results) + sum(p["served"]["failed"] for p in pairs)
    pair_rows = [f"| {i + 1} | {p['cli']['rows']:,} | {p['cli']['seconds']:.1f} | "
                 f"{p['cli']['small_seconds']:.1f} | {p['cli']['marginal_rows_per_s']:,.0f} | "
                 f"{p['served']['rows_per_s']:,.0f} | {p['served']['p50_ms']:,.0f} | "
                 f"{p['served']['failed']} | {p['ratio']:.2f} |" for i, p in enumerate(pairs)]
    rows = [f"| {r['model']} | {r['clients']} | {r['requests']:,} | {r['failed']} | "
            f"{r['rows_per_s']:,.0f} | {r['p50_ms']:,.0f} | {r['p95_ms']:,.0f} | "
            f"{r['p99_ms']:,.0f} | {r['mean_batch_rows']:,.0f} |" for r in results]
    report("serve_load", "Serving under load: `ensemble serve`", [
        "`ensemble serve MODEL --port 0 --log-level warning` in a subprocess on 127.0.0.1;",
        f"each request is `POST /predict` with {TEXTS_PER_REQUEST} rows (keyword and text) of",
        "tweets sampled from the competition's train and test files; clients are asyncio tasks",
        "on one httpx client in this process, so the load generator shares the 2 cores with",
        "the server. A fixed number of requests per scenario, each scenario capped at "
        f"{args.time_cap:.0f} s; the server was warmed up with 4 requests first. Latency is",
        "per request, from sending to the parsed answer; mean batch = rows per predict call",
        "(GET /health).",
    ], ["model", "clients", "requests", "failed", "rows/s", "p50 ms", "p95 ms", "p99 ms",
        "mean batch"], rows, {"scenarios": results,
                              "pairs": pairs, "ratio_vs_predict_once_started": ratio,
                              "ratio_vs_predict_end_to_end": ratio_end_to_end,
                              "failed_requests": failed}, extra=[
        "",
        f"**Served against `ensemble predict`, same machine, same run.** {PAIRS} back-to-back "
        f"pairs on the default ensemble: `ensemble predict` on {pair_size:,} rows written "
        f"as a CSV (end to end, and on {SMALL} rows for its "
        f"start-up: imports and model load, which the rate once started leaves out), then the "
        f"same rows served to 64 clients x {TEXTS_PER_REQUEST} texts (the server already "
        f"running and warm).",
        "",
        "| pair | rows | predict s | predict start-up s | predict rows/s once started | "
        "served rows/s | served p50 ms | failed | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
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
