"""The transformer member against the same KerasHub model written by hand, in one process.

By hand is KerasHub's documented recipe: ``BertTextClassifier.from_preset(minilm,
num_classes=2)`` with ``BertTextClassifierPreprocessor(sequence_length=64)``, compiled
with AdamW, ``fit(texts, labels, batch_size=32, epochs=1)``, ``predict(texts)``.
The member runs the same backbone, 1 epoch, batch 32, at most 64 word-pieces, with its
own choices (dynamic padding, tokenizing once). Both train on the same 2,000 tweets and
predict the same 3,263; the pairs alternate (hand, member, hand, member, ...) so machine
drift hits both alike. Ratio = member seconds / by-hand seconds (<= 1.10 is the target).

Run: .venv/bin/python benchmarks/transformer_overhead.py [--pairs 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, TRAIN, report  # noqa: E402

N_TRAIN = 2_000


def hand_classifier(path: str, sequence_length: int) -> Any:
    """KerasHub's recipe: ``BertTextClassifier`` + its preprocessor, compiled with AdamW."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        path, sequence_length=sequence_length)
    model = keras_hub.models.BertTextClassifier.from_preset(path, num_classes=2,
                                                            preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.AdamW(5e-5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def by_hand(path: str, texts: list[str], labels: np.ndarray, test: list[str]
            ) -> tuple[float, float]:
    start = time.perf_counter()
    model = hand_classifier(path, 64)
    model.fit(x=texts, y=labels, batch_size=32, epochs=1, verbose=0)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.predict(test, batch_size=64, verbose=0)
    return fit_s, time.perf_counter() - start


def member(path: str, texts: list[str], labels: np.ndarray, test: list[str]
           ) -> tuple[float, float]:
    from plugins.transformer import _PRETRAINED, Transformer
    from plugins.transformer_batches import TOKENS

    _PRETRAINED.clear()  # pay for loading the weights and tokenizing, as by hand does
    TOKENS._entries.clear()
    start = time.perf_counter()
    model = Transformer(path, epochs=1, validation_fraction=0.0, warmup=0.0, max_length=64,
                        pooling="cls", random_state=0).fit(texts, labels)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.predict_proba(test)
    return fit_s, time.perf_counter() - start


def workload() -> tuple[str, list[str], np.ndarray, list[str]]:
    """(minilm's folder, N_TRAIN training tweets, their labels, the tweets of test.csv)."""
    from plugins.transformer import resolve_preset

    train = pd.read_csv(TRAIN).sample(N_TRAIN, random_state=0)
    test = pd.read_csv(ROOT / "examples" / "data" / "disaster-tweets" / "test.csv")
    return (resolve_preset("minilm"), train["text"].tolist(), train["target"].to_numpy(),
            test["text"].fillna("").tolist())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    path, texts, labels, test = workload()
    runs = {"by hand": [], "member": []}
    for _ in range(args.pairs):
        runs["by hand"].append(by_hand(path, texts, labels, test))
        runs["member"].append(member(path, texts, labels, test))
        print(runs, flush=True)
    hand, ours = np.array(runs["by hand"]), np.array(runs["member"])
    ratio = np.median(ours / hand, axis=0)
    rows = [f"| {name} | {np.median(r[:, 0]):.1f} | {N_TRAIN / np.median(r[:, 0]):.0f} | "
            f"{np.median(r[:, 1]):.1f} | {len(test) / np.median(r[:, 1]):.0f} |"
            for name, r in (("KerasHub by hand (fixed 64)", hand),
                            ("transformer member (dynamic padding)", ours))]
    rows.append(f"| ratio member / by hand (median of pairs) | {ratio[0]:.3f} | | "
                f"{ratio[1]:.3f} | |")
    report("transformer_overhead", "transformer member vs the same KerasHub model by hand",
           [f"all-MiniLM-L6-v2, 1 epoch on {N_TRAIN:,} tweets (batch 32), predict the "
            f"{len(test):,} tweets of test.csv; {args.pairs} alternating pairs in one "
            f"process. Fit seconds include loading the weights."],
           ["", "fit s", "train rows/s", "predict s", "predict rows/s"], rows,
           {"pairs": runs, "ratio_fit": ratio[0], "ratio_predict": ratio[1]})


if __name__ == "__main__":
    main()
