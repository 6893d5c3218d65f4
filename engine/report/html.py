"""Render report sections as one HTML page: inline CSS, images as data: URIs, no scripts."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

import pandas as pd

from engine.tables import format_rows

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0; } .subtitle { color: #666; margin-top: .3rem; }
section { margin: 2rem 0; } img { max-width: 100%; display: block; margin: .5rem 0; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; max-width: 40rem; white-space: pre-wrap; }
"""


@dataclass
class Section:
    """A heading with optional text, a table and PNG images."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    images: list[bytes] = field(default_factory=list)
    index: bool = True


def _table(frame: pd.DataFrame, index: bool) -> str:
    if index and "kind" in frame.columns:  # a score table: same cells as the terminal
        header, rows = format_rows(frame)
    else:
        shown = frame.reset_index() if index else frame
        header = [str(c) for c in shown.columns]
        rows = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
                for row in shown.itertuples(index=False)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=text" if h == "text" else ""}>{html.escape(c)}</td>'
                         for h, c in zip(header, row, strict=True)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page as a string."""
    parts = []
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.table is not None:
            parts.append(_table(section.table, section.index))
        for png in section.images:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<img alt="{html.escape(section.title)}" '
                         f'src="data:image/png;base64,{data}">')
        parts.append("</section>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=subtitle>{html.escape(subtitle)}</p>"
            + "".join(parts) + "</body></html>\n")
