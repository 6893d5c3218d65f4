"""keras-text predict overhead on one fitted model: predict_proba vs its own model_.predict.

Same weights, same batches: what is left is the plugin's wrapper (input checks,
string tensor, (n, K) output). Median of 7 alternating calls on all 7,613 tweets.

Run: .venv/bin/python benchmarks/keras_predict_wrapper.py
Writes benchmarks/results/keras_predict_wrapper.md and .json.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TRAIN, report  # noqa: E402

from plugins._tensorflow import import_tensorflow  # noqa: E402
from plugins.keras_text import KerasText  # noqa: E402


def main() -> None:
    tf = import_tensorflow()
    frame = pd.read_csv(TRAIN)
    texts, y = frame["text"].tolist(), frame["target"].to_numpy()
    rows, data = [], {}
    for arch in ["dense", "lstm", "gru", "bilstm", "conv1d"]:
        member = KerasText(arch, epochs=1, random_state=42).fit(texts[:2000], y[:2000])
        tensor = lambda: tf.constant(texts)[:, None]  # noqa: E731 - raw path builds it too
        member.predict_proba(texts)
        member.model_.predict(tensor(), batch_size=256, verbose=0)
        plugin, raw = [], []
        for _ in range(7):
            start = time.perf_counter()
            member.predict_proba(texts)
            plugin.append(time.perf_counter() - start)
            start = time.perf_counter()
            member.model_.predict(tensor(), batch_size=256, verbose=0)
            raw.append(time.perf_counter() - start)
        ratio = statistics.median(plugin) / statistics.median(raw)
        data[arch] = {"plugin_s": statistics.median(plugin), "raw_s": statistics.median(raw),
                      "ratio": ratio}
        rows.append(f"| {arch} | {statistics.median(raw):.3f} | {statistics.median(plugin):.3f} "
                    f"| {ratio:.3f} |")
        print(rows[-1], flush=True)
    report("keras_predict_wrapper",
           "keras-text predict: wrapper overhead on the same fitted model (target <= 1.10)",
           ["predict_proba against the member's own model_.predict, same weights and batches."],
           ["architecture", "model_.predict s (7,613 tweets)", "predict_proba s", "ratio"],
           rows, data)


if __name__ == "__main__":
    main()
