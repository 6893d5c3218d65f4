"""Fewer folds and no refit for the expensive member: accuracy, fit and predict cost.

The transformer member of the best preset (top 2 of 6 layers trained) alone in an
ensemble on the reference split, each setting in a fresh process:
- ``cv=3`` then a refit on all rows (4 fine-tunings);
- ``cv=3, refit=False``: the 3 fold models' average predicts (3 fine-tunings, 3 forward
  passes per prediction);
Per setting: fit seconds, out-of-fold accuracy / F1+, validation accuracy / F1+, and
prediction rows/s on test.csv.

Run: .venv/bin/python benchmarks/transformer_folds.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, reference_split, report  # noqa: E402

BERT = ("transformer", {"trainable_layers": 2, "learning_rate": 2e-4, "epochs": 4,
                        "predict_dtype": "bfloat16"})
SETTINGS = {"cv=3, refit": {"cv": 3}, "cv=3, fold average (no refit)":
            {"cv": 3, "refit": False}}


def child(setting: str) -> dict:
    from engine import Ensemble
    from engine.metrics import classification_scores

    train, valid = reference_split()
    test = pd.read_csv(ROOT / "examples" / "data" / "disaster-tweets" / "test.csv")
    ens = Ensemble({"bert": BERT}, random_state=42, **SETTINGS[setting])
    start = time.perf_counter()
    ens.fit(train["text"].tolist(), train["target"].to_numpy())
    fit_s = time.perf_counter() - start
    held = classification_scores(valid["target"].to_numpy(),
                                 ens.predict_proba(valid["text"].tolist()))
    ens.predict_proba(test["text"].tolist()[:64])
    start = time.perf_counter()
    ens.predict_proba(test["text"].tolist())
    rate = len(test) / (time.perf_counter() - start)
    oof = ens.scores_["bert"]
    return {"setting": setting, "fit_s": fit_s, "oof_accuracy": oof["accuracy"],
            "oof_f1": oof["f1_positive"], "valid_accuracy": held["accuracy"],
            "valid_f1": held["f1_positive"], "predict_rows_per_s": rate}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
        return
    runs = []
    for setting in SETTINGS:
        out = subprocess.run([sys.executable, __file__, "--child", setting],
                             capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"{setting} failed:\n{out.stderr[-3000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    rows = [f"| {r['setting']} | {r['fit_s']:.0f} | {100 * r['oof_accuracy']:.2f} | "
            f"{r['oof_f1']:.4f} | {100 * r['valid_accuracy']:.2f} | {r['valid_f1']:.4f} | "
            f"{r['predict_rows_per_s']:.0f} |" for r in runs]
    report("transformer_folds", "Folds and refit for the transformer member",
           ["The best preset's transformer member (top 2 of 6 layers trained, bfloat16 "
            "prediction) alone in an ensemble, fitted on the reference split's 6,851 tweets "
            "(fresh process each; random_state 42). Validation: the 762 held-out tweets; "
            "predict rows/s on test.csv."],
           ["setting", "fit s", "out-of-fold accuracy %", "out-of-fold F1+",
            "validation accuracy %", "validation F1+", "predict rows/s"], rows, {"runs": runs})


if __name__ == "__main__":
    main()
