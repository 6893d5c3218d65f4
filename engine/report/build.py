"""Gather what the report shows: leaderboard, figures, per-class scores, most-wrong rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from engine.data import as_python
from engine.errors import DataError
from engine.evaluation import encode_known, oof_scores, score_models
from engine.report import figures
from engine.report.html import Section, render
from engine.version import __version__


def _labels(ensemble: Any) -> list[str]:
    return ensemble.class_labels()


def per_class_scores(y: np.ndarray, pred: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=range(len(labels)), zero_division=0)
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1,
                         "support": support}, index=pd.Index(labels, name="class"))


def most_wrong(texts: list[str], y: np.ndarray, pred: np.ndarray, proba: np.ndarray,
               labels: list[str], n: int = 10) -> dict[str, pd.DataFrame]:
    """The wrong predictions the ensemble was surest of.

    For two classes: false positives with the highest probability of the
    positive class and false negatives with the lowest. For more: the wrong
    rows with the highest probability of the predicted class.
    """
    wrong = np.flatnonzero(pred != y)

    def frame(rows: np.ndarray, confidence: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"text": [texts[i] for i in rows],
                             "true": [labels[y[i]] for i in rows],
                             "predicted": [labels[pred[i]] for i in rows],
                             "probability of predicted": np.round(confidence, 4)})

    if len(labels) == 2:
        fp = wrong[pred[wrong] == 1]
        fn = wrong[pred[wrong] == 0]
        fp = fp[np.argsort(-proba[fp, 1], kind="stable")][:n]
        fn = fn[np.argsort(proba[fn, 1], kind="stable")][:n]
        return {"false positives (most confident)": frame(fp, proba[fp, 1]),
                "false negatives (most confident)": frame(fn, proba[fn, 0])}
    confidence = proba[wrong, pred[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:n]
    return {"wrong predictions (most confident)": frame(order, proba[order, pred[order]])}


def label_issues_section(issues: pd.DataFrame, n: int = 20) -> Section:
    """The most likely wrong training labels (a :meth:`Ensemble.label_issues` table)."""
    counts = ", ".join(f"{reason} {count}" for reason, count in issues.attrs["counts"].items())
    columns = [c for c in ("row", "id", "text", "given", "suggested", "score", "reason")
               if c in issues.columns]
    shown = issues.head(n)[columns].copy()
    for column in ("given", "suggested"):  # labels as the user wrote them, not as 0/1 floats
        shown[column] = shown[column].map(lambda v: str(as_python(v)))
    return Section(
        "Most likely wrong training labels", table=shown, index=False,
        text=f"{len(issues)} of {issues.attrs['n_rows']} training rows listed by the label "
             f"audit ({counts}); the {min(n, len(issues))} most likely wrong. Score: 1 - the "
             f"ensemble's out-of-fold probability of the given label (higher: more likely "
             f"wrong). `ensemble audit` writes the whole table.")


def build_report(ensemble: Any, X: Any, y: Any, title: str = "ensemble report",
                 source: str = "", out_of_fold: bool = False,
                 extra_rows: pd.DataFrame | None = None,
                 issues: pd.DataFrame | None = None) -> str:
    """The report as one self-contained HTML string (figures embedded as PNG).

    Parameters
    ----------
    ensemble : Ensemble
        Fitted.
    X, y : labelled data to evaluate on (not the training rows, for honest numbers).
    title : str
    source : str
        Where the data came from, shown under the title.
    out_of_fold : bool, default=False
        X, y are the training rows: report the stored out-of-fold predictions
        of every member and combiner instead of predicting (honest without
        held-out data; no prediction times).
    extra_rows : DataFrame, default=None
        More leaderboard rows scored on the same X, y, such as the demo's
        distilled student (``kind`` "distilled"); shown in the table and charts.
    issues : DataFrame or None
        The ensemble's :meth:`~engine.Ensemble.label_issues` on its training
        rows: a section lists the most likely wrong labels with their text.

    Returns
    -------
    str
    """
    codes = encode_known(ensemble.classes_, y)
    if out_of_fold:
        if not np.array_equal(codes, ensemble.y_codes_):
            raise DataError("out_of_fold=True needs the training rows and labels, in the order "
                            "the ensemble was fitted on")
        table, outputs = oof_scores(ensemble)
    else:
        table, outputs = score_models(ensemble, X, y)
    labels = _labels(ensemble)
    metric = "f1_positive" if len(labels) == 2 else "f1_macro"
    said = f"F1 of the positive class '{labels[1]}'" if len(labels) == 2 else "macro F1"
    if extra_rows is not None:
        table = pd.concat([table, extra_rows]).sort_values(metric, ascending=False,
                                                           kind="stable")
    own = next(name for name in table.index if str(name).startswith("ensemble ("))
    pred, proba = outputs[own]
    sections = [
        Section("Leaderboard", table=table,
                text=f"{len(codes)} rows; models sorted by {said}. Members "
                     f"predict alone; combiners reuse the members' predictions. fit s = seconds "
                     f"to fit on all training rows; ms/row = prediction time." if not out_of_fold
                else f"{len(codes)} training rows, scored out-of-fold ({ensemble.cv} folds: each "
                     f"row predicted by models that did not see it); models sorted by "
                     f"{said}. fit s = seconds to fit on all rows."),
        Section(f"{said} by model",
                images=[figures.f1_bars(table, metric)]),
        *([] if out_of_fold else [Section(
            "Score against prediction time", images=[figures.speed_vs_score(table, metric)],
            text="One point per member and combiner: the best trade-offs sit top-left.")]),
        Section("Confusion matrices", images=[figures.confusion_matrices(
            {name: p for name, (p, _) in outputs.items()}, codes, labels)],
            text="Rows: true class; columns: predicted class."),
    ]
    scores = per_class_scores(codes, pred, labels)
    sections.append(Section(f"Per-class precision and recall: {own}", table=scores,
                            images=[figures.per_class(scores)]))
    histories = {name: member.history_ for name, member in ensemble.members_.items()
                 if getattr(member, "history_", None)}
    if histories:
        sections.append(Section("Training curves of the Keras members",
                                images=[figures.training_curves(histories)],
                                text="Dashed: the validation split Keras held out while "
                                     "fitting on all training rows." if any(
                                         "val_loss" in h for h in histories.values()) else
                                     "Loss and accuracy on the training rows per epoch (no "
                                     "validation split was set)."))
    if len(labels) == 2:
        threshold = ensemble.threshold_ if getattr(ensemble, "threshold_", None) is not None \
            else 0.5
        sections.append(Section("Precision/recall curve", images=[
            figures.precision_recall(codes, proba[:, 1], threshold)],
            text=f"Decision threshold {threshold:.3f} on the probability of '{labels[1]}'"
                 + (" (tuned on out-of-fold predictions)."
                    if getattr(ensemble, "threshold_", None) is not None else " (argmax).")))
    texts = next(iter(ensemble.member_texts(X).values()))
    for heading, rows in most_wrong(texts, codes, pred, proba, labels).items():
        sections.append(Section(heading.capitalize(), table=rows, index=False))
    if issues is not None:
        sections.append(label_issues_section(issues))
    subtitle = (f"{source} · ensemble-engine {__version__} · "
                f"{dt.datetime.now().isoformat(timespec='seconds')}")
    return render(title, subtitle, sections)


def write_report(ensemble: Any, X: Any, y: Any, path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`build_report` to ``path`` atomically (or stream it: ``-``); returns the path."""
    from engine.io.outputs import output_file

    html = build_report(ensemble, X, y, **kwargs)
    with output_file(path, encoding="utf-8") as handle:
        handle.write(html)
    return Path(path)
