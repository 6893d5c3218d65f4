"""Writing a config back as TOML: the standard library reads TOML but does not write it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from engine.errors import ConfigError

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v, where)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {where} = {value!r} to TOML; give it a TOML value")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    plain = {k: v for k, v in data.items() if v is not None and not isinstance(v, Mapping)
             and not _is_table_array(v)}
    for key, value in plain.items():
        lines.append(f"{_key(key)} = {_value(value, '.'.join([*path, key]))}")
    for key, value in data.items():
        if isinstance(value, Mapping):
            name = ".".join(_key(p) for p in [*path, key])
            if not value or any(not isinstance(v, Mapping) for v in value.values()):
                lines.extend(["", f"[{name}]"])  # [members] alone would say nothing
            _table(value, [*path, key], lines)
    for key, value in data.items():
        if _is_table_array(value):
            for item in value:
                lines.extend(["", f"[[{'.'.join(_key(p) for p in [*path, key])}]]"])
                _table(item, [*path, key], lines)


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    """TOML text for ``data`` (tables, arrays of tables, scalars; None values are left out).

    Examples
    --------
    >>> print(dumps({"name": "x", "members": {"nb": {"plugin": "tfidf-nb", "alpha": 0.5,
    ...                                              "ngram_range": (1, 2)}}}))
    name = "x"
    <BLANKLINE>
    [members.nb]
    plugin = "tfidf-nb"
    alpha = 0.5
    ngram_range = [1, 2]
    <BLANKLINE>
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _table(data, [], lines)
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) + "\n"
