"""Score a fitted ensemble's members and combiners on labelled data."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.data import numeric_columns, select_texts
from engine.errors import DataError
from engine.metrics import SCORE_COLUMNS, classification_scores


def encode_known(classes: np.ndarray, y: Any) -> np.ndarray:
    """Codes of labels the ensemble was trained on; unseen labels are an error."""
    values = pd.Series(np.asarray(y, dtype=object))
    lookup = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
    codes = values.map(lambda v: lookup.get(v.item() if hasattr(v, "item") else v, -1))
    unseen = sorted({str(v) for v, c in zip(values, codes, strict=True) if c < 0})
    if unseen:
        raise DataError(f"labels {unseen[:5]} were not seen in training "
                        f"(classes: {[c.item() for c in classes]}); check the label column")
    return codes.to_numpy(dtype=np.int64)


def evaluate(ensemble: Any, X: Any, y: Any,
             combiners: Sequence[str] = ("mean", "vote", "stacking")) -> pd.DataFrame:
    """One row per member and per combiner: scores, fit seconds, predict ms per row.

    Parameters
    ----------
    ensemble : Ensemble
        Fitted.
    X : sequence of str or DataFrame
    y : array-like
        True labels, of the training labels' type.
    combiners : list of str
        Combiners to compare besides the ensemble's own (refitted on the
        stored out-of-fold probabilities; members are not refitted).

    Returns
    -------
    DataFrame
        Indexed by model name; ``kind`` is "member" or "combiner".
    """
    codes = encode_known(ensemble.classes_, y)
    texts = select_texts(X, ensemble.text, ensemble.fill_na)
    rows, probas, seconds = [], [], {}
    for name, member in ensemble.members_.items():
        start = time.perf_counter()
        proba = member.predict_proba(texts)
        seconds[name] = time.perf_counter() - start
        probas.append(proba)
        rows.append({"model": name, "kind": "member", **classification_scores(codes, proba),
                     "fit_s": ensemble.fit_seconds_.get(name),
                     "predict_ms_per_row": 1000 * seconds[name] / max(len(texts), 1)})
    P = np.stack(probas)
    own = ensemble.combiner_.name
    for name in [own, *[c for c in combiners if c != own]]:
        combiner = ensemble.combiner_ if name == own else ensemble.recombine(name).combiner_
        features = numeric_columns(X, getattr(combiner, "passthrough", None))
        start = time.perf_counter()
        proba = combiner.predict_proba(P, features)
        pred = combiner.predict(P, features)
        extra = time.perf_counter() - start
        label = f"ensemble ({name})" if name == own else name
        rows.append({"model": label, "kind": "combiner",
                     **classification_scores(codes, proba, pred),
                     "fit_s": sum(ensemble.fit_seconds_.values()),
                     "predict_ms_per_row": 1000 * (sum(seconds.values()) + extra)
                     / max(len(texts), 1)})
    table = pd.DataFrame(rows).set_index("model")
    ordered = [c for c in ["kind", *SCORE_COLUMNS, "fit_s", "predict_ms_per_row"]
               if c in table.columns]
    return table[ordered]
