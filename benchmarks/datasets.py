"""Labelled text sets for the benchmarks beyond the binary disaster-tweets task.

``tweet_topics`` is a real multi-class set with string labels built from
train.csv and test.csv with no hub or download: each tweet's Kaggle ``keyword``
(the search term that found it) names a kind of event, and the kinds are the
classes. The texts are the tweets themselves; ``keyword`` is not an input.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.data import holdout_split

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "disaster-tweets"

# keyword stems -> event kind; a keyword matching none of them is left out
TOPICS = {
    "fire": ["ablaze", "arson", "blaze", "blazing", "burn", "fire", "flames", "hellfire",
             "engulfed", "smoke", "lava", "volcano"],
    "water": ["flood", "deluge", "drown", "inundat", "tsunami", "sinking", "sunk",
              "rainstorm", "mudslide", "oil%20spill"],
    "wind and weather": ["hurricane", "twister", "windstorm", "whirlwind", "tornado", "cyclone",
                         "typhoon", "storm", "hail", "blizzard", "thunder", "lightning",
                         "heat%20wave", "drought", "avalanche"],
    "transport": ["accident", "collide", "collision", "crash", "derail", "wreck", "airplane",
                  "ambulance", "fire%20truck"],
    "explosions and attacks": ["bomb", "explo", "detonat", "weapon", "terror", "attack",
                               "hijack", "hostage", "massacre", "mass%20murder", "army",
                               "military", "war%20zone", "battle", "riot", "loud%20bang"],
    "illness and hunger": ["outbreak", "famine", "quarantin", "bioterror", "blight",
                           "chemical%20emergency", "radiation", "nuclear", "meltdown"],
}


def topic_of(keyword: object) -> str | None:
    """The event kind of a Kaggle keyword, or None when it names none (or is missing)."""
    if not isinstance(keyword, str):
        return None
    for topic, stems in TOPICS.items():
        if any(stem in keyword for stem in stems):
            return topic
    return None


def tweet_topics(split_seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Six-class tweets: (train, validation, unlabeled test texts).

    Train and validation come from train.csv (90/10, the project's shuffled
    holdout split, as for the binary task); the unlabeled rows are test.csv's tweets with a
    known topic keyword (for distillation), their topic kept in ``topic`` for
    scoring only.

    Returns
    -------
    (DataFrame, DataFrame, DataFrame)
        Columns ``id``, ``text``, ``topic``.
    """
    def labelled(path: Path) -> pd.DataFrame:
        frame = pd.read_csv(path)
        frame["topic"] = frame["keyword"].map(topic_of)
        return frame.dropna(subset=["topic"])[["id", "text", "topic"]].reset_index(drop=True)

    train, valid = holdout_split(labelled(DATA / "train.csv"), 0.1, split_seed)
    return train.reset_index(drop=True), valid.reset_index(drop=True), labelled(DATA / "test.csv")
