"""Printing score tables in the terminal (rich) and as Markdown."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.text_safety import clean, markdown_text

if TYPE_CHECKING:  # only annotations: printing a table needs no pandas import
    import pandas as pd

PERCENT = {"accuracy"}
LABELS = {"accuracy": "accuracy %", "f1": "F1 weighted", "f1_positive": "F1 positive",
          "f1_macro": "F1 macro", "log_loss": "log loss", "fit_s": "fit s",
          "predict_ms_per_row": "ms/row", "roc_auc": "ROC AUC"}


def _cell(column: str, value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{100 * value:.2f}" if column in PERCENT else f"{value:.4f}" \
            if column != "fit_s" else f"{value:.1f}"
    return str(value)


def format_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of a score table (index = model name)."""
    columns = [c for c in table.columns if c != "kind" and table[c].notna().any()]
    labels = dict(LABELS)
    if table.attrs.get("positive") is not None:  # which class F1 positive is about
        labels["f1_positive"] = f"F1 (positive: {table.attrs['positive']})"
    # member names and labels come from the model directory: no control characters
    header = [clean(h) for h in ["model", *[labels.get(c, c) for c in columns]]]
    rows = [[clean(name), *[clean(_cell(c, row[c])) for c in columns]]
            for name, row in table.iterrows()]
    return header, rows


def plain(*cells: object) -> list[Text]:
    """Table cells as plain text: cleaned of control characters, never read as rich markup."""
    return [Text(clean("" if c is None else c)) for c in cells]


def make_console(stderr: bool = False) -> Console:
    """A rich console; when not writing to a terminal (CI logs, files), 160 columns wide."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def print_table(table: pd.DataFrame, title: str = "", console: Console | None = None) -> None:
    """Print a score table aligned in the terminal."""
    header, rows = format_rows(table)
    out = Table(title=plain(title)[0] if title else None)
    for i, name in enumerate(header):
        out.add_column(plain(name)[0], justify="left" if i == 0 else "right")
    for row in rows:
        out.add_row(*plain(*row))
    (console or make_console()).print(out)


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table of the same cells, each shown as text (names and labels come from
    model directories and CSVs: never HTML, links or extra cells)."""
    header, rows = format_rows(table)
    lines = ["| " + " | ".join(map(markdown_text, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(markdown_text, row)) + " |" for row in rows]
    return "\n".join(lines)
