"""A first config from a data file: guess its columns, write a commented config for
``ensemble init``, and the config ``ensemble fit DATA.csv --label COL`` fits without one.

Both go through :func:`engine.config.config_from_tables`, so a config-free fit is
exactly the config it records in the model directory, and what ``init`` writes
loads as any other config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pandas.api.types import is_numeric_dtype

from engine.config import Config, config_from_tables
from engine.data import read_table, require_columns
from engine.errors import ConfigError

# The members a config-free fit uses: fast, and strong together (benchmarks/results/
# demo_members.md: NB + LR + USE stacked is within 0.5 points of the five-member demo).
DEFAULT_MEMBERS = ("tfidf-nb", "tfidf-lr", "use")
DEFAULT_COMBINER = "stacking"
_ID_NAME = re.compile(r"^(id|.*[_ -]id|.*Id|.*ID)$", re.IGNORECASE)
GUESS_ROWS = 2000  # rows read to guess columns; enough to tell ids from text


def guess_columns(frame: Any, label: str) -> tuple[list[str], str | None, list[str]]:
    """The text column(s) and id column of ``frame``, and what was guessed, in words.

    Text: the string column with the longest values on average (never the
    label or the id). Id: a column named like an id (``id``, ``msg_id``) whose
    values are all present and different.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": [1, 2, 3], "topic": ["a", "b", "a"],
    ...                       "message": ["win a prize now", "see you at 6", "call me"],
    ...                       "label": ["spam", "ham", "ham"]})
    >>> guess_columns(frame, "label")
    (['message'], 'id', ["text column 'message' (longest texts: 11 characters on average)", \
"id column 'id' (named like an id, all values different)"])
    """
    ids = [c for c in frame.columns if c != label and _ID_NAME.match(str(c))
           and frame[c].notna().all() and frame[c].is_unique]
    id_column = str(ids[0]) if ids else None
    lengths = {}
    for column in frame.columns:
        values = frame[column].dropna()
        if column in (label, id_column) or is_numeric_dtype(values.dtype):
            continue
        if len(values) and all(isinstance(v, str) for v in values):
            lengths[column] = values.str.len().mean()
    if not lengths:
        raise ConfigError(f"found no text column besides '{label}' (columns: "
                          f"{', '.join(map(str, frame.columns))}); name it with --text COLUMN")
    text = max(lengths, key=lengths.get)
    said = [f"text column '{text}' (longest texts: {lengths[text]:.0f} characters on average)"]
    if id_column:
        said.append(f"id column '{id_column}' (named like an id, all values different)")
    return [str(text)], id_column, said


def _member_tables(members: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``[members.<name>]`` tables for plugin names; a plugin used twice gets ``-2``, ..."""
    tables: dict[str, dict[str, Any]] = {}
    for plugin in members:
        name, n = plugin, 1
        while name in tables:
            n += 1
            name = f"{plugin}-{n}"
        tables[name] = {"plugin": plugin}
    return tables


def starter_tables(train: str | Path, *, text: Sequence[str], label: str,
                   id_column: str | None = None, members: Sequence[str] = DEFAULT_MEMBERS,
                   combiner: str = DEFAULT_COMBINER, name: str | None = None,
                   test: str | Path | None = None) -> dict[str, Any]:
    """The config tables of a config-free fit of ``train`` (as TOML would parse them)."""
    if not members:
        raise ConfigError("--members is empty; name plugins, e.g. tfidf-nb,tfidf-lr,use")
    data: dict[str, Any] = {"train": Path(train).as_posix(),
                            "text": text[0] if len(text) == 1 else list(text),
                            "label": label, "id": id_column, "fill_na": "",
                            "test": None if test is None else Path(test).as_posix()}
    return {"name": name or Path(train).stem,
            "data": data,
            "ensemble": {"combiner": combiner, "cv": 5, "random_state": 42},
            "members": _member_tables(members)}


def starter_config(train: str | Path, **settings: Any) -> Config:
    """The validated :class:`Config` of a config-free fit; its ``source`` is its TOML."""
    from engine.tuning.toml_out import dumps

    tables = starter_tables(train, **settings)
    source = dumps(tables, header="written by `ensemble fit` from its command line; "
                                  "`ensemble fit THIS.toml` fits the same ensemble")
    return config_from_tables(tables, Path.cwd(), tables["name"], "the command line",
                              source=source)


def _toml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # strings and lists of strings: valid TOML


def init_toml(train: str | Path, label: str, text: Sequence[str] | None = None,
              id_column: str | None = None, members: Sequence[str] = DEFAULT_MEMBERS
              ) -> tuple[str, str]:
    """A commented config for ``train`` and a line saying what was guessed.

    Returns
    -------
    (str, str)
        The TOML text (``ensemble init`` prints it) and the guesses (to stderr).
    """
    frame = read_table(train, nrows=GUESS_ROWS)
    where = Path(train).name
    require_columns(frame, [label, *(text or []), *([id_column] if id_column else [])], where)
    guessed = []
    if not text or id_column is None:
        guess_text, guess_id, said = guess_columns(frame, label)
        if not text:
            text = guess_text
            guessed.append(said[0])
        if id_column is None and guess_id:
            id_column = guess_id
            guessed.append(said[-1])
    classes = frame[label].dropna().unique()
    tables = _member_tables(members)
    text_value = text[0] if len(text) == 1 else list(text)
    lines = [
        f"# Ensemble config for {where}, written by `ensemble init`. Edit it, then:",
        "#   ensemble demo --config THIS.toml   # holdout scores, report.html, refit, save",
        "#   ensemble fit THIS.toml             # fit on all rows and save",
        f"name = {_toml(Path(train).stem)}",
        "",
        "[data]",
        f"train = {_toml(Path(train).as_posix())}",
        "# test = \"test.csv\"                 # with sample_submission: a Kaggle submission",
        "# sample_submission = \"sample_submission.csv\"",
        f"{'text = ' + _toml(text_value):<35}# a column, or a list of columns joined by spaces",
        f"label = {_toml(label)}",
        (f"{'id = ' + _toml(id_column):<35}# copied into predictions" if id_column else
         "# id = \"id\"                       # an id column to copy into predictions"),
        "fill_na = \"\"                       # missing texts read as empty",
        "validation_split = 0.1             # `ensemble demo` scores on these held-out rows",
        "split_seed = 42",
    ]
    if all(isinstance(c, (int,)) or str(c).lstrip("-").isdigit() for c in classes):
        names = ", ".join(_toml(f"class {c}") for c in sorted(classes, key=int))
        lines.append(f"# class_names = [{names}]  # names for the integer labels, in order")
    lines += [
        "",
        "[ensemble]",
        "combiner = \"stacking\"               # or mean, vote, selection; "
        "`ensemble plugins` lists them",
        "cv = 5                             # folds of the out-of-fold probabilities",
        "random_state = 42",
        "# threshold = \"f1\"                 # two classes: tune the decision threshold",
        "",
        "# Members: `ensemble plugins NAME` lists a plugin's parameters and defaults.",
    ]
    for name, table in tables.items():
        lines += [f"[members.{name}]", f"plugin = {_toml(table['plugin'])}", ""]
    lines += ["# [members.dense]", "# plugin = \"keras-text\"            # a small Keras model",
              "# architecture = \"dense\"", ""]
    return "\n".join(lines), "guessed " + "; ".join(guessed) if guessed else ""
