"""The leaderboard: score a fitted ensemble's members and combiners on labelled data."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine import registry
from engine.data import as_python, numeric_columns
from engine.errors import DataError, EnsembleError
from engine.metrics import SCORE_COLUMNS, classification_scores
from engine.oof import has_oof, require_oof


def encode_known(classes: np.ndarray, y: Any) -> np.ndarray:
    """Codes of labels the ensemble was trained on; unseen labels are an error."""
    values = pd.Series(np.asarray(y, dtype=object))
    lookup = {as_python(c): i for i, c in enumerate(classes)}
    codes = values.map(lambda v: lookup.get(as_python(v), -1))
    unseen = sorted({str(v) for v, c in zip(values, codes, strict=True) if c < 0})
    if unseen:
        raise DataError(f"labels {unseen[:5]} were not seen in training "
                        f"(classes: {[as_python(c) for c in classes]}); check the label column")
    return codes.to_numpy(dtype=np.int64)


def _own_label(ensemble: Any) -> str:
    threshold = getattr(ensemble, "threshold_", None)
    extra = "" if threshold is None else f", threshold {threshold:.3f}"
    return f"ensemble ({ensemble.combiner_.name}{extra})"


def _alternatives(ensemble: Any, combiners: Sequence[str] | None) -> dict[str, Any]:
    """Fitted ensembles for each other combiner, sharing the members (no refitting)."""
    if not has_oof(ensemble):  # a distilled student: nothing to recombine
        return {}
    names = list(registry.get_registry().combiners()) if combiners is None else list(combiners)
    own = ensemble.combiner_.name
    result = {}
    for name in names:
        if name == own:
            continue
        try:
            result[name] = ensemble.recombine(name)
        except EnsembleError as exc:
            if combiners is not None:  # asked for by name: the user wants to know why not
                raise
            warnings.warn(f"leaderboard: skipped combiner '{name}' ({exc})", stacklevel=3)
    return result


def _finish(rows: list[dict[str, Any]], ensemble: Any) -> pd.DataFrame:
    table = pd.DataFrame(rows).set_index("model")
    ordered = [c for c in ["kind", *SCORE_COLUMNS, "fit_s", "predict_ms_per_row"]
               if c in table.columns]
    key = "f1_positive" if len(ensemble.classes_) == 2 else "f1_macro"
    table = table[ordered].sort_values(key, ascending=False, kind="stable")
    return name_positive(table, ensemble)


def name_positive(table: pd.DataFrame, ensemble: Any) -> pd.DataFrame:
    """Note which class ``f1_positive`` scores, for the tables' headers ("F1 (positive: spam)")."""
    if len(ensemble.classes_) == 2:
        table.attrs["positive"] = ensemble.class_labels()[1]
    return table


def evaluate(ensemble: Any, X: Any, y: Any,
             combiners: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per member and per combiner: scores, fit seconds, predict ms per row.

    Parameters
    ----------
    ensemble : Ensemble
        Fitted.
    X : sequence of str or DataFrame
    y : array-like
        True labels, of the training labels' type.
    combiners : list of str or None
        Combiners to compare besides the ensemble's own, refitted on the stored
        out-of-fold probabilities (members are not refitted); every registered
        combiner when None.

    Returns
    -------
    DataFrame
        Indexed by model name, best positive-class (binary) or macro F1 first;
        ``kind`` is "member" or "combiner".
    """
    return score_models(ensemble, X, y, combiners)[0]


def score_models(ensemble: Any, X: Any, y: Any, combiners: Sequence[str] | None = None
                 ) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """:func:`evaluate`'s table and each model's (predicted codes, probabilities)."""
    codes = encode_known(ensemble.classes_, y)
    texts = ensemble.member_texts(X)
    outputs = {}
    n_rows = max(len(codes), 1)
    rows, probas, seconds = [], [], {}
    for name, member in ensemble.members_.items():
        start = time.perf_counter()
        proba = member.predict_proba(texts[name])
        seconds[name] = time.perf_counter() - start
        probas.append(proba)
        outputs[name] = (np.argmax(proba, axis=1), proba)
        rows.append({"model": name, "kind": "member", **classification_scores(codes, proba),
                     "fit_s": ensemble.fit_seconds_.get(name),
                     "predict_ms_per_row": 1000 * seconds[name] / n_rows})
    P = np.stack(probas)
    candidates = {_own_label(ensemble): ensemble, **_alternatives(ensemble, combiners)}
    for label, candidate in candidates.items():
        features = numeric_columns(X, getattr(candidate.combiner_, "passthrough", None))
        start = time.perf_counter()
        pred, proba = candidate._predict_codes(P, features)
        extra = time.perf_counter() - start
        cost = candidate.combiner_.predict_cost(seconds, P)
        outputs[label] = (pred, proba)
        rows.append({"model": label, "kind": "combiner",
                     **classification_scores(codes, proba, pred),
                     "fit_s": sum(ensemble.fit_seconds_.values()),
                     "predict_ms_per_row": 1000 * (cost + extra) / n_rows})
    return _finish(rows, ensemble), outputs


def side_by_side(models: Mapping[str, Any], X: Any, y: Any,
                 megabytes: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Whole models on the same labelled rows: a teacher beside its student, say.

    Parameters
    ----------
    models : dict of str to Ensemble
        Fitted models with the same classes, by the name to show.
    X, y : labelled data
    megabytes : dict of str to float, default=None
        Each model's size on disk, when known (a saved model directory).

    Returns
    -------
    DataFrame
        One row per model: ``kind`` ("distilled" for a student), scores,
        ``rows_per_s`` predicting X in this process, ``mb``; best first.
    """
    rows, extra = [], {}
    for name, model in models.items():
        codes = encode_known(model.classes_, y)
        start = time.perf_counter()
        pred, proba = model.predict_with_proba(X)
        seconds = time.perf_counter() - start
        rows.append({"model": name,
                     "kind": "distilled" if getattr(model, "distilled_from_", None)
                     else "ensemble",
                     **classification_scores(codes, proba, encode_known(model.classes_, pred))})
        extra[name] = {"rows_per_s": len(codes) / max(seconds, 1e-9),
                       "mb": (megabytes or {}).get(name)}
    table = _finish(rows, next(iter(models.values())))
    return table.join(pd.DataFrame.from_dict(extra, orient="index"))


def oof_leaderboard(ensemble: Any, combiners: Sequence[str] | None = None) -> pd.DataFrame:
    """The leaderboard from the stored out-of-fold probabilities of the training rows.

    Member rows score each member's out-of-fold probabilities; combiner rows
    score cross-validated combiner predictions on them. No prediction times.
    """
    return oof_scores(ensemble, combiners, predictions=False)[0]


def oof_scores(ensemble: Any, combiners: Sequence[str] | None = None, predictions: bool = True
               ) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """:func:`oof_leaderboard`'s table and each model's out-of-fold (codes, probabilities).

    A loaded model keeps its combiner's scores but not its out-of-fold
    probabilities; with ``predictions`` they are computed again (the combiner
    refitted on the stored member probabilities, no member refitted).
    """
    require_oof(ensemble, "score it out of fold", "score it on labelled data instead "
                "(leaderboard(X, y); CLI: ensemble evaluate MODEL LABELLED.csv)")
    rows, outputs = [], {}
    for i, name in enumerate(ensemble.members_):
        outputs[name] = (np.argmax(ensemble.oof_[i], axis=1), ensemble.oof_[i])
        rows.append({"model": name, "kind": "member",
                     **classification_scores(ensemble.y_codes_, ensemble.oof_[i]),
                     "fit_s": ensemble.fit_seconds_.get(name)})
    candidates = {_own_label(ensemble): ensemble, **_alternatives(ensemble, combiners)}
    for label, candidate in candidates.items():
        rows.append({"model": label, "kind": "combiner", **candidate.scores_["ensemble"],
                     "fit_s": sum(ensemble.fit_seconds_.values())})
        if predictions:
            if not hasattr(candidate, "oof_proba_"):
                candidate = candidate.recombine(candidate.combiner_)
            proba, threshold = candidate.oof_proba_, getattr(candidate, "threshold_", None)
            outputs[label] = (np.argmax(proba, axis=1) if threshold is None
                              else candidate._decide(proba), proba)
    return _finish(rows, ensemble), outputs
