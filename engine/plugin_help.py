"""What ``ensemble plugins NAME`` prints: a registered class's parameters, their defaults,
the values its ``_constraints`` allow, and what its docstring says of each."""

from __future__ import annotations

import inspect
import re
from typing import Any

from engine.constraints import describe_constraints

_PARAM_LINE = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*:\s*(.*)$")  # "a, b : int" too


def docstring_parameters(cls: type) -> dict[str, str]:
    """Each parameter's first sentence from the numpydoc ``Parameters`` section of ``cls``.

    Examples
    --------
    >>> class Model:
    ...     '''A model.
    ...
    ...     Parameters
    ...     ----------
    ...     alpha : float, default=1.0
    ...         Additive smoothing. Larger is smoother.
    ...     '''
    >>> docstring_parameters(Model)
    {'alpha': 'Additive smoothing.'}
    """
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    found: dict[str, str] = {}
    inside, current = False, []
    for i, line in enumerate(lines):
        if line.strip() == "Parameters" and i + 1 < len(lines) and \
                set(lines[i + 1].strip()) == {"-"}:
            inside = True
            continue
        if not inside or set(line.strip()) == {"-"}:
            continue
        if line and not line.startswith(" "):
            match = _PARAM_LINE.match(line)
            if match is None:  # the next section's title
                if i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
                    break
                continue
            current = [name.strip() for name in match.group(1).split(",")]
            found.update(dict.fromkeys(current, ""))
        elif current and line.strip() and not found[current[0]].endswith("."):
            for name in current:
                found[name] = f"{found[name]} {line.strip()}".strip()
    return {name: (text.split(". ")[0].rstrip(".") + "." if text else "")
            for name, text in found.items()}


def parameter_rows(cls: type) -> list[dict[str, Any]]:
    """One row per constructor parameter: name, default, allowed values, description."""
    constraints = getattr(cls, "_constraints", {}) or {}
    described = docstring_parameters(cls)
    rows = []
    for param in inspect.signature(cls).parameters.values():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            continue
        default = None if param.default is param.empty else param.default
        rows.append({"name": param.name,
                     "default": "(required)" if param.default is param.empty else repr(default),
                     "allowed": describe_constraints(constraints[param.name])
                     if param.name in constraints else "",
                     "description": described.get(param.name, "")})
    return rows


def summary(cls: type) -> str:
    """The docstring's first paragraph, on one line."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    return " ".join(doc.split("\n\n")[0].split())
