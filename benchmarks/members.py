"""Every built-in member and the default ensemble: speed, memory, accuracy, cross-validated F1.

Each model runs in its own fresh process (so its peak RSS is its own):
- fit on the reference split's 6,851 training tweets, timed; accuracy and positive-class F1
  on its 762 validation tweets;
- predict rows/s on the 3,263 tweets of test.csv (second call timed: the first one pays
  one-off costs such as tracing a tf.function);
- 5-fold cross-validated positive-class F1 on all 7,613 tweets of train.csv: out-of-fold
  predictions over the folds a 5-fold ensemble with random_state=42 uses (a member:
  a fold loop, no final refit; the default ensemble: its own fit).
The embedding cache starts empty for each model, so `use` times include encoding.

Run: .venv/bin/python benchmarks/members.py   (writes benchmarks/results/members.*)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_MODEL, ROOT, TRAIN, reference_split, report  # noqa: E402

MEMBERS = {
    "tfidf-nb": ("tfidf-nb", {}),
    "tfidf-lr (words 1-2)": ("tfidf-lr", {"ngram_range": (1, 2)}),
    "tfidf-lr (chars 2-5)": ("tfidf-lr", {"analyzer": "char_wb", "ngram_range": (2, 5)}),
    "sklearn (counts + logistic)": ("sklearn", {"pipeline": make_pipeline(
        CountVectorizer(), LogisticRegression(max_iter=1000))}),
    "keras-text dense": ("keras-text", {"architecture": "dense"}),
    "keras-text lstm": ("keras-text", {"architecture": "lstm"}),
    "keras-text conv1d": ("keras-text", {"architecture": "conv1d"}),
    "use + logistic": ("use", {"head": "logistic"}),
    "use + dense head": ("use", {"head": "dense"}),
}
DEFAULT = "default ensemble (examples/disaster_tweets.toml)"


def measure(name: str) -> dict:
    """Runs in the child process: one model's numbers."""
    from engine.config import load_config
    from engine.ensemble import build_member
    from engine.metrics import classification_scores
    from engine.seeding import seeded

    train, valid = reference_split()
    full, test = pd.read_csv(TRAIN), pd.read_csv(TRAIN.with_name("test.csv"))
    if name == DEFAULT:
        config = load_config(ROOT / "examples" / "disaster_tweets.toml")
        model, read = config.build_ensemble(), lambda f: f
    else:
        model = seeded(build_member(MEMBERS[name]), 42)  # the member alone, as a user would
        read = lambda frame: frame["text"].tolist()  # noqa: E731
    start = time.perf_counter()
    model.fit(read(train), train["target"].to_numpy())
    fit_s = time.perf_counter() - start
    scores = classification_scores(valid["target"].to_numpy(), model.predict_proba(read(valid)))
    model.predict_proba(read(test))
    start = time.perf_counter()
    model.predict_proba(read(test))
    predict_s = time.perf_counter() - start
    if name == DEFAULT:
        from engine.workflows import data_settings

        cv_model = config.build_ensemble().fit(full, full["target"])
        cv_f1 = cv_model.scores_["ensemble"]["f1_positive"]
        # the model `ensemble fit` would write: streaming.py predicts with it
        cv_model.save(DEFAULT_MODEL, data_settings(config.data))
    else:
        texts, y = read(full), full["target"].to_numpy()
        oof = np.zeros((len(y), 2))
        for rows, held_out in StratifiedKFold(5, shuffle=True, random_state=42).split(texts, y):
            fold_model = clone(model).fit([texts[i] for i in rows], y[rows])
            oof[held_out] = fold_model.predict_proba([texts[i] for i in held_out])
        cv_f1 = classification_scores(y, oof)["f1_positive"]
    return {"fit_s": fit_s, "predict_rows_per_s": len(test) / predict_s,
            "accuracy": scores["accuracy"], "f1_positive": scores["f1_positive"],
            "cv5_f1_positive": cv_f1,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(sys.argv[2])))
        return
    rows, data = [], {}
    for name in [*MEMBERS, DEFAULT]:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "ENSEMBLE_CACHE_DIR": cache}
            done = subprocess.run([sys.executable, __file__, "--one", name], env=env, cwd=ROOT,
                                  capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        out = done.stdout
        entry = json.loads(out.strip().splitlines()[-1])
        data[name] = entry
        rows.append(f"| {name} | {entry['fit_s']:.1f} | {entry['predict_rows_per_s']:,.0f} | "
                    f"{entry['peak_rss_mb']:,.0f} | {100 * entry['accuracy']:.2f} | "
                    f"{entry['f1_positive']:.4f} | {entry['cv5_f1_positive']:.4f} |")
        print(rows[-1], flush=True)
    report("members", "Built-in members and the default ensemble", [
        "Fit: the reference split's 6,851 tweets (the default ensemble: its 5-fold out-of-fold",
        "fit, 5 members x 6 fits, plus stacking). Accuracy and F1+ (positive-class F1, Kaggle's",
        "metric): the 762 validation tweets. Predict: the 3,263 tweets of test.csv. CV5 F1+:",
        "5-fold cross-validated on all 7,613 tweets (the default ensemble: its cross-validated",
        "stacking score over the members' out-of-fold predictions). Each row in a fresh process",
        "with an empty embedding cache; peak RSS is that process's.",
    ], ["model", "fit s", "predict rows/s", "peak RSS MB", "accuracy %", "F1+", "CV5 F1+"],
        rows, data)


if __name__ == "__main__":
    main()
