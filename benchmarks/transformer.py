"""The transformer member alone on the reference split: full fine-tune vs frozen lower layers.

Each (variant, seed) runs in a fresh process, so fit times include loading the
pretrained weights and computing the frozen layers' outputs, as a user's
first fit does. Per run: accuracy and positive-class F1 on the 762 validation
tweets, fit seconds, training throughput (training rows x epochs run / fit
seconds), and prediction rows/s on the 3,263 tweets of test.csv in float32
and in bfloat16 (with bfloat16's validation accuracy).

Run: .venv/bin/python benchmarks/transformer.py [VARIANT ...] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, reference_split, report  # noqa: E402

VARIANTS = {
    "full fine-tune": {"epochs": 4},
    "top 2 of 6 layers trained": {"trainable_layers": 2, "learning_rate": 2e-4, "epochs": 4},
    "top 2 of 6 layers trained, bfloat16 training": {
        "trainable_layers": 2, "learning_rate": 2e-4, "epochs": 4, "train_dtype": "bfloat16"},
    "first 4 of 6 layers, top 2 trained, bfloat16 training": {
        "num_layers": 4, "trainable_layers": 2, "learning_rate": 2e-4, "epochs": 4,
        "train_dtype": "bfloat16"},
    "first 3 of 6 layers, top 2 trained, bfloat16 training": {
        "num_layers": 3, "trainable_layers": 2, "learning_rate": 2e-4, "epochs": 4,
        "train_dtype": "bfloat16"},
    "top 2 of 6 layers trained, bfloat16 training, text cleaned": {
        "trainable_layers": 2, "learning_rate": 2e-4, "epochs": 4, "train_dtype": "bfloat16",
        "clean_text": True},
    "first 4 of 6 layers, top 2 trained, bfloat16 training, text cleaned": {
        "num_layers": 4, "trainable_layers": 2, "learning_rate": 2e-4, "epochs": 4,
        "train_dtype": "bfloat16", "clean_text": True},
    "frozen + linear head": {"trainable_layers": 0, "learning_rate": 2e-3, "epochs": 10,
                             "patience": 2},
}
TEST = ROOT / "examples" / "data" / "disaster-tweets" / "test.csv"
PARTIAL = ROOT / "benchmarks" / ".work" / "transformer-runs.jsonl"


def child(variant: str, seed: int) -> dict:
    from plugins.transformer import Transformer

    train, valid = reference_split()
    test = pd.read_csv(TEST)["text"].tolist()
    member = Transformer(**VARIANTS[variant], random_state=seed)
    start = time.perf_counter()
    member.fit(train["text"].tolist(), train["target"].to_numpy())
    fit_s = time.perf_counter() - start
    epochs = len(member.history_["loss"])
    n_train = round(len(train) * (1 - member.validation_fraction))
    row = {"variant": variant, "seed": seed, "fit_s": fit_s, "epochs_run": epochs,
           "best_epoch": member.best_epoch_, "train_rows_per_s": n_train * epochs / fit_s}
    for dtype in ("float32", "bfloat16"):
        member.set_params(predict_dtype=dtype)
        proba = member.predict_proba(valid["text"].tolist())
        pred = proba.argmax(axis=1)
        member.predict_proba(test[:64])  # trace once before timing
        start = time.perf_counter()
        member.predict_proba(test)
        row[f"predict_rows_per_s_{dtype}"] = len(test) / (time.perf_counter() - start)
        row[f"accuracy_{dtype}"] = accuracy_score(valid["target"], pred)
        row[f"f1_{dtype}"] = f1_score(valid["target"], pred)
    return row


def table(runs: list[dict]) -> None:
    rows, data = [], {"runs": runs}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        acc = [100 * r["accuracy_float32"] for r in mine]
        f1 = [r["f1_float32"] for r in mine]
        def med(key: str, runs: list[dict] = mine) -> float:
            return float(np.median([r[key] for r in runs]))
        fp32, bf16 = med("predict_rows_per_s_float32"), med("predict_rows_per_s_bfloat16")
        rows.append(
            f"| {variant} | {len(mine)} | {np.median(acc):.2f} ({min(acc):.2f}-{max(acc):.2f}) "
            f"| {np.median(f1):.4f} | {100 * med('accuracy_bfloat16'):.2f} | {med('fit_s'):.0f} "
            f"| {med('epochs_run'):.0f} | {med('train_rows_per_s'):.0f} "
            f"| {fp32:.0f} | {bf16:.0f} |")
    report("transformer", "transformer member alone: reference split (6,851 train / 762 valid)",
           ["all-MiniLM-L6-v2 (preset `minilm`), mean pooling, AdamW with linear warm-up "
            "(10%) and decay, batch 32, max 64 word-pieces with dynamic padding, early "
            "stopping on 10% of the training rows (patience 1, best epoch restored). Medians "
            "over seeds; each run in a fresh process (fit includes loading the weights and, "
            "when layers are frozen, computing their outputs once). Predict rows/s on "
            "test.csv (3,263 tweets). Rows were measured in different sessions, some on a "
            "shared machine: compare accuracies across rows, speeds only within a row "
            "(transformer_throughput.md compares speeds in one run)."],
           ["variant", "seeds", "accuracy % (range)", "F1+", "accuracy % bf16 predict",
            "fit s", "epochs", "train rows/s", "predict rows/s fp32", "predict rows/s bf16"],
           rows, data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    PARTIAL.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in PARTIAL.read_text().splitlines()] \
        if PARTIAL.exists() else []
    for variant in args.variants:
        for seed in args.seeds:
            if any(r["variant"] == variant and r["seed"] == seed for r in done):
                continue
            out = subprocess.run([sys.executable, __file__, "--child", variant, str(seed)],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"{variant} seed {seed} failed:\n{out.stderr[-3000:]}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(row, flush=True)
            done.append(row)
            with open(PARTIAL, "a") as handle:
                handle.write(json.dumps(row) + "\n")
    table(done)


if __name__ == "__main__":
    main()
