"""Find the training rows whose label is likely wrong.

Three reasons, each from evidence the fit already has or the user passes:

- **likely mislabelled**: confident learning (Northcutt, Jiang and Chuang,
  "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021),
  implemented here from the paper, on the ensemble's own out-of-fold
  probabilities (:func:`engine.oof.ensemble_oof_proba`: for stacking the
  combiner's cross-validated output), so no model that judges a row ever saw
  its label;
- **conflicting duplicate**: the same text (exactly, or after normalising
  case, whitespace, links and HTML entities) with different labels; the
  rows whose label disagrees with the ensemble's view of the group are listed;
- **near-duplicate in test**: a training text that (nearly) reappears among
  the test texts, when they are given (leakage: a test score on it is not
  honest).

Confident learning, as used here
--------------------------------
With out-of-fold probabilities ``p`` and given labels ``y``:

1. per-class thresholds ``t_j``: the mean of ``p[:, j]`` over the rows
   labelled ``j`` (the model's average self-confidence in class ``j``);
2. the confident joint ``C[i, j]``: rows labelled ``i`` whose probability of
   ``j`` reaches ``t_j`` (the largest such ``j`` when several do);
3. ``C`` calibrated so that row ``i`` sums to the number of rows labelled
   ``i``, and normalised to the joint ``Q`` of given and true labels;
4. flag the rows that both pruning rules of the paper choose (its "C+NR",
   the default ``both``; each rule alone is a ``method`` too, and
   benchmarks/results/label_audit.md measures them all):

   - prune by noise rate: for each off-diagonal ``(i, j)``, the
     ``round(n * Q[i, j])`` rows labelled ``i`` with the largest margin
     ``p[:, j] - p[:, i]``;
   - prune by class: for each class ``i``, the ``round(n * sum_j!=i Q[i, j])``
     rows labelled ``i`` with the lowest ``p[:, i]``;

   rows whose most probable class is their given one are never flagged (as
   the paper's reference implementation does). Requiring both rules costs a
   little recall for precision, which matters when flagged rows are dropped:
   on injected noise it had the best detection F1 of the five methods.

Rows are ranked by self-confidence (``1 - p[row, given]``, the ``score``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.data import as_python, data_hash, select_texts
from engine.errors import ConfigError, DataError

MISLABELLED, DUPLICATE, LEAKAGE = ("likely mislabelled", "conflicting duplicate",
                                   "near-duplicate in test")
# Reasons that say the label is wrong (drop_label_issues drops these rows); leakage does not.
LABEL_REASONS = (MISLABELLED, DUPLICATE)
METHODS = ("both", "prune_by_noise_rate", "prune_by_class", "confident_joint", "argmax")
DEFAULT_METHOD = "both"
RANKINGS = ("self_confidence", "normalized_margin")
NEAR_DUPLICATE = 0.9  # cosine similarity of word 1-2 gram TF-IDF, after normalising

_LINK = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def per_class_thresholds(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``t_j``: the mean probability of class ``j`` over the rows labelled ``j``."""
    n_classes = proba.shape[1]
    counts = np.bincount(codes, minlength=n_classes)
    sums = np.zeros(n_classes)
    np.add.at(sums, codes, proba[np.arange(len(codes)), codes])
    # a class with no rows can never be confidently predicted
    return np.divide(sums, counts, out=np.full(n_classes, np.inf), where=counts > 0)


def confident_joint(proba: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The confident joint ``C`` (given label x confident true label) and each row's confident
    class (-1 where no class reaches its threshold).

    Examples
    --------
    >>> p = np.array([[.9, .1], [.9, .1], [.2, .8], [.1, .9], [.9, .1]])
    >>> C, confident = confident_joint(p, np.array([0, 0, 1, 1, 1]))
    >>> C.tolist(), confident.tolist()
    ([[2, 0], [1, 2]], [0, 0, 1, 1, 0])
    """
    thresholds = per_class_thresholds(proba, codes)
    above = proba >= thresholds - 1e-12
    masked = np.where(above, proba, -np.inf)
    confident = np.where(above.any(axis=1), np.argmax(masked, axis=1), -1)
    n_classes = proba.shape[1]
    C = np.zeros((n_classes, n_classes), dtype=np.int64)
    counted = confident >= 0
    np.add.at(C, (codes[counted], confident[counted]), 1)
    return C, confident


def joint_estimate(C: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``Q``: the confident joint calibrated to the given label counts, summing to 1."""
    counts = np.bincount(codes, minlength=C.shape[0]).astype(float)
    totals = C.sum(axis=1, keepdims=True).astype(float)
    # a class with no confident row: assume its labels are right
    calibrated = np.where(totals > 0, C / np.where(totals > 0, totals, 1), np.eye(len(C)))
    calibrated = calibrated * counts[:, None]
    return calibrated / calibrated.sum()


def flag_mislabelled(proba: np.ndarray, codes: np.ndarray, method: str = DEFAULT_METHOD,
                     keep_per_class: int = 1) -> np.ndarray:
    """Boolean mask of the rows confident learning says are mislabelled.

    Parameters
    ----------
    proba : ndarray of shape (n_rows, n_classes)
        Out-of-fold probabilities.
    codes : ndarray of int, shape (n_rows,)
        Given labels as class codes.
    method : str, default="both"
        ``prune_by_noise_rate``: per off-diagonal of the estimated joint, the
        rows with the largest margin; ``prune_by_class``: per given class, its
        estimated number of errors, least self-confident first; ``both``: rows
        both choose; ``confident_joint``: the off-diagonal rows of the confident
        joint; ``argmax``: the most probable class is not the given one.
    keep_per_class : int, default=1
        Never flag so many rows of a class that fewer than this many remain.

    Returns
    -------
    ndarray of bool, shape (n_rows,)
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    n, n_classes = proba.shape
    rows = np.arange(n)
    predicted = np.argmax(proba, axis=1)
    if method == "argmax":
        flagged = predicted != codes
    elif method == "confident_joint":
        _, confident = confident_joint(proba, codes)
        flagged = (confident >= 0) & (confident != codes)
    else:
        C, _ = confident_joint(proba, codes)
        Q = joint_estimate(C, codes)
        by_rate = np.zeros(n, dtype=bool)
        by_class = np.zeros(n, dtype=bool)
        for i in range(n_classes):
            labelled = rows[codes == i]
            if method in ("prune_by_noise_rate", "both"):
                for j in range(n_classes):
                    count = int(round(n * Q[i, j])) if j != i else 0
                    if count:
                        margin = proba[labelled, j] - proba[labelled, i]
                        by_rate[labelled[np.argsort(-margin, kind="stable")[:count]]] = True
            if method in ("prune_by_class", "both"):
                count = int(round(n * (Q[i].sum() - Q[i, i])))
                if count:
                    order = np.argsort(proba[labelled, i], kind="stable")
                    by_class[labelled[order[:count]]] = True
        flagged = {"prune_by_noise_rate": by_rate, "prune_by_class": by_class,
                   "both": by_rate & by_class}[method]
        flagged = flagged & (predicted != codes)
    return _keep_some(flagged, proba, codes, keep_per_class)


def _keep_some(flagged: np.ndarray, proba: np.ndarray, codes: np.ndarray,
               keep: int) -> np.ndarray:
    """Unflag a class's most self-confident flagged rows until ``keep`` of its rows remain."""
    flagged = flagged.copy()
    for k in np.unique(codes):
        labelled = np.flatnonzero(codes == k)
        excess = keep - int((~flagged[labelled]).sum())
        if excess > 0:
            candidates = labelled[flagged[labelled]]
            order = np.argsort(-proba[candidates, k], kind="stable")
            flagged[candidates[order[:excess]]] = False
    return flagged


def label_scores(proba: np.ndarray, codes: np.ndarray,
                 rank_by: str = "self_confidence") -> np.ndarray:
    """How likely each given label is wrong, in [0, 1] (higher: more likely).

    ``self_confidence``: 1 - the probability of the given label;
    ``normalized_margin``: (1 - (p[given] - max of the other classes)) / 2.
    """
    if rank_by not in RANKINGS:
        raise ConfigError(f"rank_by must be one of {', '.join(RANKINGS)}, got {rank_by!r}")
    rows = np.arange(len(codes))
    given = proba[rows, codes]
    if rank_by == "self_confidence":
        return 1.0 - given
    others = proba.copy()
    others[rows, codes] = -np.inf
    return (1.0 - (given - others.max(axis=1))) / 2.0


def normalise_text(text: str) -> str:
    """The text duplicates are compared by: HTML entities decoded, links dropped, lower
    case, runs of whitespace as one space.

    Examples
    --------
    >>> normalise_text("Fire  at the Mall &amp; PARK http://t.co/abc12")
    'fire at the mall & park'
    """
    text = html.unescape(html.unescape(text))  # scraped tweets are often escaped twice
    return _SPACE.sub(" ", _LINK.sub(" ", text)).strip().lower()


def conflicting_duplicates(texts: Sequence[str], codes: np.ndarray, proba: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows whose (normalised) text recurs with other labels.

    Returns
    -------
    group : ndarray of int, shape (n_rows,)
        A number per conflicting group (-1 for rows in none).
    suggested : ndarray of int
        The group's label by the ensemble: the class with the highest mean
        out-of-fold probability over the group's rows.
    detail : list of str
        Per row, how its group matched and its labels ("" outside groups).
    """
    frame = pd.DataFrame({"exact": list(texts), "key": [normalise_text(t) for t in texts],
                          "code": codes})
    group = np.full(len(frame), -1, dtype=np.int64)
    suggested = np.argmax(proba, axis=1)
    detail = [""] * len(frame)
    labels_per_key = frame.groupby("key", sort=False)["code"].nunique()
    conflicting = labels_per_key.index[labels_per_key.to_numpy() > 1]
    exact_conflicts = frame.groupby("exact", sort=False)["code"].transform("nunique") > 1
    members = frame[frame["key"].isin(set(conflicting))]
    for number, (_, rows) in enumerate(members.groupby("key", sort=False)):
        index = rows.index.to_numpy()
        label = int(np.argmax(proba[index].mean(axis=0)))
        how = "exact" if exact_conflicts.iloc[index].any() else "after normalising"
        counts = rows["code"].value_counts().sort_index()
        group[index], suggested[index] = number, label
        summary = f"{how}: {len(index)} rows, labels " + ", ".join(
            f"{code}x{count}" for code, count in counts.items())
        for i in index:
            detail[i] = summary
    return group, suggested, detail


def near_test_duplicates(train: Sequence[str], test: Sequence[str],
                         threshold: float = NEAR_DUPLICATE, chunk: int = 2048
                         ) -> tuple[np.ndarray, np.ndarray]:
    """For each training text, its most similar test text and their similarity.

    Similarity is the cosine of word 1-2 gram TF-IDF vectors of the
    normalised texts (an exact match after normalising is 1.0).

    Returns
    -------
    (ndarray of int, ndarray of float)
        The test row (-1 below ``threshold``) and the similarity, per training row.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    train_keys = [normalise_text(t) for t in train]
    test_keys = [normalise_text(t) for t in test]
    match = np.full(len(train_keys), -1, dtype=np.int64)
    similarity = np.zeros(len(train_keys))
    if not test_keys:
        return match, similarity
    exact = {key: i for i, key in reversed(list(enumerate(test_keys)))}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b",
                                 sublinear_tf=True, dtype=np.float32)
    try:
        vectorizer.fit(train_keys + test_keys)
    except ValueError:  # no words at all: only exact matches count
        vectorizer = None
    if vectorizer is not None:
        A, B = vectorizer.transform(train_keys), vectorizer.transform(test_keys).T.tocsr()
        for start in range(0, A.shape[0], chunk):
            block = (A[start:start + chunk] @ B).toarray()
            best = block.argmax(axis=1)
            match[start:start + chunk] = best
            similarity[start:start + chunk] = block[np.arange(len(best)), best]
    for i, key in enumerate(train_keys):
        if key in exact:
            match[i], similarity[i] = exact[key], 1.0
    match[similarity < threshold] = -1
    return match, np.minimum(similarity, 1.0)


def audit(proba: np.ndarray, codes: np.ndarray, classes: np.ndarray, *,
          texts: Sequence[str] | None = None, test: Sequence[str] | None = None,
          ids: Sequence[Any] | None = None, method: str = DEFAULT_METHOD,
          rank_by: str = "self_confidence", keep_per_class: int = 1,
          near_duplicate: float = NEAR_DUPLICATE) -> pd.DataFrame:
    """The ranked table of suspected rows from out-of-fold probabilities (see module doc).

    Returns
    -------
    DataFrame
        One row per suspected training row, most likely wrong first: ``row``
        (0-based position), ``id`` (with ``ids``), ``text`` (with ``texts``),
        ``given``, ``suggested``, ``score``, ``reason`` (reasons joined by
        "; "), ``detail``; ``attrs`` holds the counts by reason, the method,
        the ranking and the per-class thresholds.
    """
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise DataError("a label audit needs probabilities of at least two classes; this "
                        "data set has one class")
    if texts is None and test is not None:
        raise DataError("finding test leakage needs the training texts: pass X too")
    n = len(codes)
    mislabelled = flag_mislabelled(proba, codes, method, keep_per_class)
    suggested = np.argmax(proba, axis=1)
    others = proba.copy()
    others[np.arange(n), codes] = -np.inf
    suggested[mislabelled] = np.argmax(others[mislabelled], axis=1)
    score = label_scores(proba, codes, rank_by)
    reasons: list[list[str]] = [[MISLABELLED] if m else [] for m in mislabelled]
    details = [""] * n
    group = np.full(n, -1, dtype=np.int64)
    if texts is not None:
        group, group_label, group_detail = conflicting_duplicates(texts, codes, proba)
        disputed = (group >= 0) & (group_label != codes)
        mean_proba = _group_mean(proba, group)
        for i in np.flatnonzero(disputed):
            reasons[i].append(DUPLICATE)
            details[i] = f"duplicate group {group[i]} ({group_detail[i]})"
            suggested[i] = group_label[i]
        score[disputed] = np.maximum(score[disputed],
                                     label_scores(mean_proba[disputed], codes[disputed],
                                                  rank_by))
    if test is not None:
        match, similarity = near_test_duplicates(texts, list(test), near_duplicate)
        for i in np.flatnonzero(match >= 0):
            reasons[i].append(LEAKAGE)
            note = f"test row {match[i]}, similarity {similarity[i]:.2f}"
            details[i] = f"{details[i]}; {note}" if details[i] else note
    listed = np.array([bool(r) for r in reasons], dtype=bool)
    rows = np.flatnonzero(listed)
    table: dict[str, Any] = {"row": rows}
    if ids is not None:
        table["id"] = [ids[i] for i in rows]
    if texts is not None:
        table["text"] = [texts[i] for i in rows]
    table.update(given=classes[codes[rows]], suggested=classes[suggested[rows]],
                 score=np.round(score[rows], 6), reason=["; ".join(reasons[i]) for i in rows],
                 detail=[details[i] for i in rows])
    if texts is not None:
        table["duplicate_group"] = pd.array(np.where(group[rows] >= 0, group[rows], None)
                                            .tolist(), dtype="Int64")
    frame = pd.DataFrame(table)
    frame = frame.sort_values(["score", "row"], ascending=[False, True], kind="stable")
    frame = frame.reset_index(drop=True)
    frame.attrs.update(
        counts={reason: int(sum(reason in r for r in reasons))
                for reason in (MISLABELLED, DUPLICATE, LEAKAGE)},
        n_rows=n, method=method, rank_by=rank_by,
        thresholds={str(as_python(c)): round(float(t), 4)
                    for c, t in zip(classes, per_class_thresholds(proba, codes), strict=True)})
    return frame


def _group_mean(proba: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Each grouped row's probabilities replaced by its group's mean (others unchanged)."""
    mean = proba.copy()
    for number in np.unique(group[group >= 0]):
        index = group == number
        mean[index] = proba[index].mean(axis=0)
    return mean


def issue_rows(table: pd.DataFrame) -> np.ndarray:
    """Positions of the rows an audit table says have a wrong label (what drop_label_issues
    drops): likely mislabelled or a disputed duplicate, not leakage alone."""
    wrong = table["reason"].map(lambda r: any(reason in r for reason in LABEL_REASONS))
    return np.sort(table.loc[wrong.to_numpy(dtype=bool), "row"].to_numpy(dtype=np.int64))


def reason_counts(table: pd.DataFrame, rows: np.ndarray) -> dict[str, int]:
    """How many of ``rows`` carry each label reason."""
    chosen = table.set_index("row").loc[rows, "reason"]
    return {reason: int(chosen.map(lambda r, reason=reason: reason in r).sum())
            for reason in LABEL_REASONS}


def training_codes(ensemble: Any, X: Any, y: Any) -> np.ndarray:
    """The class codes of ``X, y``, after checking they are the rows ``ensemble`` was fitted on.

    ``y`` None uses the stored labels (then the texts alone are checked).
    """
    from engine.evaluation import encode_known

    texts = next(iter(ensemble.member_texts(X).values()))
    fitted = ensemble.training_.get("n_rows", len(ensemble.y_codes_))
    if len(texts) != fitted:
        raise DataError(f"X has {len(texts)} rows but the ensemble was fitted on {fitted}; "
                        f"pass the training data it was fitted on, in the same order")
    codes = ensemble.y_codes_ if y is None else encode_known(ensemble.classes_, y)
    if len(codes) != len(texts):
        raise DataError(f"X has {len(texts)} rows but y has {len(codes)} labels; pass one "
                        f"label per row")
    if data_hash(texts, codes) != ensemble.training_.get("sha256"):
        raise DataError("X and y are not the data this ensemble was fitted on (their sha256 "
                        "differs from the manifest's); pass the same training rows, columns "
                        "and labels, in the same order")
    return codes


def label_issues(ensemble: Any, X: Any = None, y: Any = None, *, test: Any = None,
                 id: str | None = "id", method: str = DEFAULT_METHOD,
                 rank_by: str = "self_confidence") -> pd.DataFrame:
    """Training rows whose label is likely wrong: see :meth:`engine.Ensemble.label_issues`."""
    from engine.oof import ensemble_oof_proba, require_oof

    require_oof(ensemble, "audit the labels")
    proba = ensemble_oof_proba(ensemble)
    codes = ensemble.y_codes_
    texts = ids = None
    if X is not None:
        codes = training_codes(ensemble, X, y)
        texts = select_texts(X, ensemble.text, ensemble.fill_na)
        if id is not None and isinstance(X, pd.DataFrame) and id in X.columns:
            ids = [as_python(v) for v in X[id].tolist()]
    elif y is not None:
        raise DataError("y without X: pass the training texts X with their labels y, or "
                        "neither (the stored labels are used)")
    test_texts = None
    if test is not None:
        test_texts = select_texts(test, ensemble.text, "") if isinstance(test, pd.DataFrame) \
            else select_texts(test, fill_na="")
    return audit(proba, codes, ensemble.classes_, texts=texts, test=test_texts, ids=ids,
                 method=method, rank_by=rank_by)
