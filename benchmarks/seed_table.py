"""The tutorials' models as engine members on the reference split, beside the tutorials' rows.

For every Keras model the same network is also built and trained with raw Keras
in this script, alternating with the plugin, so the plugin's overhead is a
ratio measured side by side. Medians of --repeats runs.

Run: .venv/bin/python benchmarks/seed_table.py [--repeats 3]
Writes benchmarks/results/seed_table.md and .json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import reference_split, report  # noqa: E402

from engine.metrics import classification_scores  # noqa: E402
from engine.registry import get_plugin  # noqa: E402
from plugins._tensorflow import import_tensorflow  # noqa: E402

# name: (plugin, params, tutorial accuracy %, precision, recall, F1) from SEED-RESULTS.md
MODELS = {
    "0 baseline (tfidf-nb)": ("tfidf-nb", {}, 79.27, 0.8111, 0.7927, 0.7862),
    "1 dense": ("keras-text", {"architecture": "dense"}, 78.74, 0.7915, 0.7874, 0.7847),
    "2 LSTM": ("keras-text", {"architecture": "lstm"}, 75.07, 0.7510, 0.7507, 0.7489),
    "3 GRU": ("keras-text", {"architecture": "gru"}, 76.77, 0.7675, 0.7677, 0.7668),
    "4 bidirectional": ("keras-text", {"architecture": "bilstm"}, 76.64, 0.7666, 0.7664, 0.7651),
    "5 Conv1D": ("keras-text", {"architecture": "conv1d"}, 77.82, 0.7808, 0.7782, 0.7759),
    # cache=False: fit and predict times include encoding every tweet.
    "6 USE (dense head)": ("use", {"head": "dense", "cache": False}, 81.23, 0.8149, 0.8123,
                           0.8107),
    "6 USE (logistic head)": ("use", {"head": "logistic", "cache": False}, 81.23, 0.8149,
                              0.8123, 0.8107),
    "mean-embedding (Trax model)": ("keras-text", {"architecture": "mean-embedding"},
                                    None, None, None, None),
    "multi-hot (IMDB model 2)": ("keras-text", {"architecture": "multi-hot"},
                                 None, None, None, None),
}


def raw_keras(architecture: str, texts: list[str], y: np.ndarray, seed: int):
    """The tutorial's network written directly in Keras, as a notebook user would."""
    tf = import_tensorflow()
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    vectorizer = layers.TextVectorization(max_tokens=10000, output_sequence_length=15)
    vectorizer.adapt(tf.constant(texts))
    inputs = keras.Input(shape=(1,), dtype="string")
    x = layers.Embedding(vectorizer.vocabulary_size(), 128)(vectorizer(inputs))
    x = {"dense": lambda t: layers.GlobalAveragePooling1D()(t),
         "lstm": lambda t: layers.LSTM(64)(t),
         "gru": lambda t: layers.GRU(64)(t),
         "bilstm": lambda t: layers.Bidirectional(layers.LSTM(64))(t),
         "conv1d": lambda t: layers.GlobalMaxPooling1D()(
             layers.Conv1D(32, 5, activation="relu")(t))}[architecture](x)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(tf.constant(texts)[:, None], y.astype("float32"), epochs=5, batch_size=32,
              verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5,
                        help="seeds for the accuracy spread of the recurrent/conv models")
    args = parser.parse_args()
    tf = import_tensorflow()
    train, valid = reference_split()
    texts, y = train["text"].tolist(), train["target"].to_numpy()
    vtexts, vy = valid["text"].tolist(), valid["target"].to_numpy()

    rows, data = [], {}
    for name, (plugin, params, acc, _precision, _recall, f1) in MODELS.items():
        cls = get_plugin(plugin)
        if "random_state" in cls().get_params():
            params = {**params, "random_state": 42}
        fits, predicts, raw_fits, raw_predicts = [], [], [], []
        arch = params.get("architecture")
        for _ in range(args.repeats if plugin == "keras-text" else 1):
            start = time.perf_counter()
            member = cls(**params).fit(texts, y)
            fits.append(time.perf_counter() - start)
            start = time.perf_counter()
            proba = member.predict_proba(vtexts)
            predicts.append(time.perf_counter() - start)
            if plugin == "keras-text" and arch not in ("mean-embedding", "multi-hot"):
                start = time.perf_counter()
                model = raw_keras(arch, texts, y, 42)
                raw_fits.append(time.perf_counter() - start)
                start = time.perf_counter()
                model.predict(tf.constant(vtexts)[:, None], batch_size=256, verbose=0)
                raw_predicts.append(time.perf_counter() - start)
        scores = classification_scores(vy, proba)
        fit_s, predict_s = statistics.median(fits), statistics.median(predicts)
        entry = {"accuracy": scores["accuracy"], "precision": scores["precision"],
                 "recall": scores["recall"], "f1": scores["f1"], "fit_s": fit_s,
                 "predict_ms_per_row": 1000 * predict_s / len(vtexts),
                 "tutorial_accuracy": acc}
        overhead = ""
        if raw_fits:
            entry["fit_overhead"] = fit_s / statistics.median(raw_fits)
            entry["predict_overhead"] = predict_s / statistics.median(raw_predicts)
            entry["raw_fit_s"] = statistics.median(raw_fits)
            overhead = f"{entry['fit_overhead']:.2f} / {entry['predict_overhead']:.2f}"
        delta = f"{100 * scores['accuracy'] - acc:+.2f}" if acc is not None else ""
        tutorial = f"{acc:.2f} / {f1:.4f}" if acc is not None else "(not on tweets)"
        rows.append(f"| {name} | {100 * scores['accuracy']:.2f} | {scores['precision']:.4f} | "
                    f"{scores['recall']:.4f} | {scores['f1']:.4f} | {tutorial} | {delta} | "
                    f"{fit_s:.1f} | {entry['predict_ms_per_row']:.3f} | {overhead} |")
        data[name] = entry
        print(rows[-1], flush=True)

    # One run on 762 tweets moves by a point or two with the seed; show the spread.
    spread_rows = []
    for name, (plugin, params, acc, *_rest) in MODELS.items():
        if plugin != "keras-text" or acc is None:
            continue
        accs = [100 * float(np.mean(get_plugin(plugin)(**{**params, "random_state": seed})
                                    .fit(texts, y).predict(vtexts) == vy))
                for seed in range(args.seeds)]
        data[name]["seed_accuracies"] = accs
        spread_rows.append(f"| {name} | {statistics.median(accs):.2f} | {min(accs):.2f} - "
                           f"{max(accs):.2f} | {acc:.2f} | "
                           f"{statistics.median(accs) - acc:+.2f} |")
        print(spread_rows[-1], flush=True)

    report("seed_table", "The tutorials' models as ensemble-engine members", [
        "Reference split of the disaster tweets (6,851 train / 762 validation), 5 epochs,",
        "Adam, batch 32, TextVectorization(10000 tokens, 15 per tweet), Embedding 128-d,",
        "`random_state=42`. Precision/recall/F1 weighted, as in the tutorial. Times are",
        f"medians of {args.repeats} runs for Keras members (one run otherwise); overhead is",
        "plugin time / the same network in raw Keras, measured alternately in this run.",
    ], ["model", "accuracy %", "precision", "recall", "F1", "tutorial acc % / F1", "Δ acc",
        "fit s", "predict ms/row", "overhead fit / predict"], rows,
        {"models": data, "repeats": args.repeats}, extra=[
        "",
        f"## Accuracy over seeds 0-{args.seeds - 1} (same settings)",
        "",
        "| model | median accuracy % | range | tutorial % | Δ median |",
        "|---|---|---|---|---|",
        *spread_rows,
    ])


if __name__ == "__main__":
    main()
