"""The keras-text plugin's overhead over the same network in raw Keras, as paired ratios.

Each repeat fits and predicts with the plugin and with raw Keras back to back
(order alternating), and the ratio of the pair is taken; the median over
repeats is robust to the load of a shared machine drifting between pairs.

Run: .venv/bin/python benchmarks/keras_overhead.py [--repeats 4]
Writes benchmarks/results/keras_overhead.md and .json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import reference_split, report  # noqa: E402
from seed_table import raw_keras  # noqa: E402

from plugins._tensorflow import import_tensorflow  # noqa: E402
from plugins.keras_text import KerasText  # noqa: E402

ARCHITECTURES = ["dense", "lstm", "gru", "bilstm", "conv1d"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    tf = import_tensorflow()
    train, valid = reference_split()
    texts, y = train["text"].tolist(), train["target"].to_numpy()
    # Predict on every tweet, timing the second call: the first traces the tf.function,
    # whose cost varies more than the prediction itself.
    ptexts = texts + valid["text"].tolist()

    def plugin_run(arch):
        start = time.perf_counter()
        member = KerasText(arch, random_state=42).fit(texts, y)
        fit = time.perf_counter() - start
        member.predict_proba(ptexts)
        start = time.perf_counter()
        member.predict_proba(ptexts)
        return fit, time.perf_counter() - start

    def raw_run(arch):
        start = time.perf_counter()
        model = raw_keras(arch, texts, y, 42)
        fit = time.perf_counter() - start
        model.predict(tf.constant(ptexts)[:, None], batch_size=256, verbose=0)
        start = time.perf_counter()
        model.predict(tf.constant(ptexts)[:, None], batch_size=256, verbose=0)
        return fit, time.perf_counter() - start

    rows, data = [], {}
    for arch in ARCHITECTURES:
        fit_ratios, predict_ratios, plugin_fits, raw_fits = [], [], [], []
        for repeat in range(args.repeats):
            runs = [("plugin", plugin_run), ("raw", raw_run)]
            if repeat % 2:
                runs.reverse()
            result = {name: run(arch) for name, run in runs}
            fit_ratios.append(result["plugin"][0] / result["raw"][0])
            predict_ratios.append(result["plugin"][1] / result["raw"][1])
            plugin_fits.append(result["plugin"][0])
            raw_fits.append(result["raw"][0])
        entry = {"fit_ratio": statistics.median(fit_ratios),
                 "predict_ratio": statistics.median(predict_ratios),
                 "fit_ratios": fit_ratios, "predict_ratios": predict_ratios,
                 "plugin_fit_s": statistics.median(plugin_fits),
                 "raw_fit_s": statistics.median(raw_fits)}
        data[arch] = entry
        rows.append(f"| {arch} | {entry['raw_fit_s']:.1f} | {entry['plugin_fit_s']:.1f} | "
                    f"{entry['fit_ratio']:.3f} | {entry['predict_ratio']:.3f} | "
                    f"{min(fit_ratios):.2f} - {max(fit_ratios):.2f} |")
        print(rows[-1], flush=True)
    report("keras_overhead", "keras-text overhead over raw Keras (target: at most 1.10)", [
        f"Reference split, 5 epochs, `random_state=42`; {args.repeats} back-to-back pairs per",
        "model, order alternating; the ratio is plugin / raw within a pair, median over pairs.",
        "Predict: all 7,613 tweets, second call timed (the first traces the tf.function).",
    ], ["architecture", "raw Keras fit s", "plugin fit s", "fit ratio", "predict ratio",
        "fit ratio range"], rows, data)


if __name__ == "__main__":
    main()
