"""Is the stacking meta-learner the limit? Others, on a model's saved out-of-fold probabilities.

A model fitted with ``stacking`` keeps its members' out-of-fold probabilities
(``oof.npz``). This script scores, out of fold again (StratifiedKFold(5,
shuffle, 42) over those rows), the default meta-learner beside logistic
regression on logits, other regularisation strengths, and gradient-boosted
trees, plus each member alone and the plain mean. No member is refitted: it
takes seconds.

Run: .venv/bin/python benchmarks/stacking_meta.py [MODEL_DIR]
(default: the best preset fitted on all tweets by best_preset.py, benchmarks/.work/best-ensemble)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import logit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, report  # noqa: E402

DEFAULT = ROOT / "benchmarks" / ".work" / "best-ensemble"


def meta_learners() -> list[tuple[str, str, object]]:
    """(label, features, estimator): "proba" is P(class 1) per member, "logit" its log-odds."""
    out: list[tuple[str, str, object]] = [
        ("logistic regression, C=1 (the default)", "proba", LogisticRegression(max_iter=1000))]
    for c in (0.01, 0.1, 10.0):
        out.append((f"logistic regression, C={c:g}", "proba",
                    LogisticRegression(C=c, max_iter=1000)))
    for c in (0.01, 1.0):
        out.append((f"logistic regression on logits, C={c:g}", "logit",
                    LogisticRegression(C=c, max_iter=1000)))
    out.append(("gradient-boosted trees (depth 3, 100 rounds, lr 0.05)", "proba",
                HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_depth=3,
                                               random_state=0)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT)
    args = parser.parse_args()
    saved = np.load(args.model / "oof.npz")
    P, y = saved["oof"], saved["y_codes"]
    if P.shape[2] != 2:
        sys.exit("stacking_meta.py compares binary models only")
    names = [m["name"] for m in json.loads((args.model / "manifest.json").read_text())["members"]]
    features = {"proba": P[:, :, 1].T}
    features["logit"] = logit(np.clip(features["proba"], 1e-6, 1 - 1e-6))
    cv = StratifiedKFold(5, shuffle=True, random_state=42)
    rows, data = [], {"model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT)
                                   else args.model), "scores": {}}

    def add(label: str, positive: np.ndarray) -> None:
        acc, f1 = accuracy_score(y, positive > 0.5), f1_score(y, positive > 0.5)
        data["scores"][label] = {"accuracy": acc, "f1_positive": f1}
        rows.append(f"| {label} | {100 * acc:.2f} | {f1:.4f} |")

    for label, kind, estimator in meta_learners():
        add(label, cross_val_predict(estimator, features[kind], y, cv=cv,
                                     method="predict_proba")[:, 1])
    add("mean of the members' probabilities", features["proba"].mean(axis=1))
    for i, name in enumerate(names):
        add(f"member {name} alone", features["proba"][:, i])
    report("stacking_meta", "Stacking meta-learners on the same out-of-fold probabilities",
           [f"{data['model']}: {len(names)} members' out-of-fold probabilities on {len(y):,} "
            f"rows; each meta-learner scored out of fold (StratifiedKFold(5, shuffle, 42))."],
           ["meta-learner", "accuracy %", "F1+"], rows, data)


if __name__ == "__main__":
    main()
