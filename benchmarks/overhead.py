"""The engine's overhead: a single-member ensemble against the same work done by hand.

An ensemble's fit is K out-of-fold fits plus a refit on all rows, so "by hand" is the same:
scikit-learn's cross_val_predict over the same folds plus a final fit, or the same Keras
network fitted K + 1 times. Predict: the ensemble's predict_proba against the pipeline's or
Keras model's own predict on the same 3,263 test tweets. Each repeat runs both back to back,
order alternating; the ratio is taken within the pair and the median over pairs reported.

Run: .venv/bin/python benchmarks/overhead.py [--repeats 3]   (target: ratios <= 1.10)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TRAIN, report  # noqa: E402
from seed_table import raw_keras  # noqa: E402

from engine import Ensemble  # noqa: E402
from plugins._tensorflow import import_tensorflow  # noqa: E402


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def interleaved_ratio(engine, hand, calls: int = 15) -> float:
    """Median of engine/hand time over back-to-back call pairs, order alternating.

    One prediction takes ~0.1 s, so timing each side in its own window measures the
    machine's noise; pairs of adjacent calls see the same machine.
    """
    ratios = []
    for call in range(calls):
        order = (engine, hand) if call % 2 == 0 else (hand, engine)
        seconds = {id(f): timed(f)[0] for f in order}
        ratios.append(seconds[id(engine)] / seconds[id(hand)])
    return statistics.median(ratios)


def sklearn_pair(texts, y, test, cv: int) -> dict:
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(cv, shuffle=True, random_state=0)

    def engine_run():
        ens = Ensemble({"m": ("sklearn", {"pipeline": pipe})}, cv=cv, random_state=0)
        fit, _ = timed(lambda: ens.fit(texts, y))
        ens.predict_proba(test[:10])  # both sides: one warm-up call before the timed ones
        return fit, lambda: ens.predict_proba(test)

    def hand_run():
        def fit_all():
            cross_val_predict(pipe, texts, y, cv=folds, method="predict_proba")
            return clone(pipe).fit(texts, y)
        fit, fitted = timed(fit_all)
        fitted.predict_proba(test[:10])
        return fit, lambda: fitted.predict_proba(test)

    return {"engine": engine_run, "hand": hand_run}


def keras_pair(texts, y, test, cv: int) -> dict:
    tf = import_tensorflow()
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=0).split(texts, y))

    def engine_run():
        ens = Ensemble({"m": ("keras-text", {"architecture": "dense"})}, cv=cv, random_state=42)
        fit, _ = timed(lambda: ens.fit(texts, y))
        ens.predict_proba(test)  # the first call traces the tf.function
        return fit, lambda: ens.predict_proba(test)

    def hand_run():
        def fit_all():
            for train, held_out in folds:
                model = raw_keras("dense", [texts[i] for i in train], y[train], 42)
                model.predict(tf.constant([texts[i] for i in held_out])[:, None], verbose=0)
            return raw_keras("dense", texts, y, 42)
        fit, model = timed(fit_all)
        # from the same list of strings the engine gets: the conversion is part of the call
        predict = lambda: model.predict(tf.constant(test)[:, None], batch_size=256,  # noqa: E731
                                        verbose=0)
        predict()
        return fit, predict

    return {"engine": engine_run, "hand": hand_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    train = pd.read_csv(TRAIN)
    texts, y = train["text"].tolist(), train["target"].to_numpy()
    test = pd.read_csv(TRAIN.with_name("test.csv"))["text"].tolist()
    rows, data = [], {}
    for label, pair, cv in (("scikit-learn pipeline (tf-idf 1-2 + logistic)", sklearn_pair, 5),
                            ("Keras network (keras-text dense)", keras_pair, 2)):
        runs = pair(texts, y, test, cv)
        fit_ratios, predict_ratios, seconds = [], [], {"engine": [], "hand": []}
        for repeat in range(args.repeats):
            order = ["engine", "hand"] if repeat % 2 == 0 else ["hand", "engine"]
            result = {side: runs[side]() for side in order}
            fit_ratios.append(result["engine"][0] / result["hand"][0])
            predict_ratios.append(interleaved_ratio(result["engine"][1], result["hand"][1]))
            for side in result:
                seconds[side].append(result[side][0])
        entry = {"cv": cv, "fit_ratio": statistics.median(fit_ratios),
                 "predict_ratio": statistics.median(predict_ratios), "fit_ratios": fit_ratios,
                 "predict_ratios": predict_ratios,
                 "engine_fit_s": statistics.median(seconds["engine"]),
                 "hand_fit_s": statistics.median(seconds["hand"])}
        data[label] = entry
        rows.append(f"| {label} | {cv} | {entry['hand_fit_s']:.1f} | {entry['engine_fit_s']:.1f} "
                    f"| {entry['fit_ratio']:.3f} | {entry['predict_ratio']:.3f} | "
                    f"{min(fit_ratios):.2f}-{max(fit_ratios):.2f} / "
                    f"{min(predict_ratios):.2f}-{max(predict_ratios):.2f} |")
        print(rows[-1], flush=True)
    report("overhead", "Engine overhead: single-member ensemble vs by hand (target <= 1.10)", [
        "All 7,613 training tweets; predict on the 3,263 test tweets. Fit = K out-of-fold fits",
        f"plus a refit, both ways. {args.repeats} back-to-back pairs, order alternating; ratio =",
        "engine / by hand within a pair, median over pairs. Predict: after a warm-up call,",
        "15 back-to-back calls of the two fitted models, order alternating; a pair's predict",
        "ratio is the median over those calls.",
    ], ["model", "folds", "by hand fit s", "engine fit s", "fit ratio", "predict ratio",
        "range fit / predict"], rows, data)



if __name__ == "__main__":
    main()
