"""Declarative parameter checks, after scikit-learn's ``_parameter_constraints``.

A class lists what each parameter may be; :func:`validate_params` checks them
all and raises a :class:`~engine.errors.ConfigError` that names the parameter,
what it must be and what it got (with "did you mean" for a mistyped option).

Examples
--------
>>> constraints = {"epochs": [Interval(int, 1, None)], "pool": [Options("mean", "cls")]}
>>> check_param("epochs", 3, constraints["epochs"])
>>> check_param("epochs", True, constraints["epochs"])
Traceback (most recent call last):
...
engine.errors.ConfigError: epochs must be a positive integer, got True
>>> check_param("pool", "maen", constraints["pool"])
Traceback (most recent call last):
...
engine.errors.ConfigError: unknown pool 'maen' (did you mean 'mean'?); pool must be one of mean, cls
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``int`` or ``float``) between ``left`` and ``right``.

    ``None`` leaves that side open; ``closed`` says which bounds are included.
    Booleans are never numbers here, and a float must be finite.
    """

    kind: type
    left: float | None
    right: float | None
    closed: Literal["left", "right", "both", "neither"] = "left"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.left is not None and (value < self.left or value == self.left
                                      and self.closed in ("right", "neither")):
            return False
        return self.right is None or (value < self.right or value == self.right
                                      and self.closed in ("right", "both"))

    def __str__(self) -> str:
        if self.left is not None and self.right is not None:
            low = "[" if self.closed in ("left", "both") else "("
            high = "]" if self.closed in ("right", "both") else ")"
            return f"in {low}{self.left}, {self.right}{high}"
        if self.kind is int and self.right is None and self.left == 1:
            return "a positive integer"
        noun = "an integer" if self.kind is int else "a finite number"
        if self.left is None and self.right is None:
            return noun
        if self.left is not None:
            return f"{noun} {'>=' if self.closed in ('left', 'both') else '>'} {self.left}"
        return f"{noun} {'<=' if self.closed in ('right', 'both') else '<'} {self.right}"


class Options:
    """One of a fixed set of values (strings, usually)."""

    def __init__(self, *values: Any) -> None:
        self.values = tuple(values)

    def accepts(self, value: Any) -> bool:
        # the type check keeps True from passing for 1; a str subclass (a string read from
        # a model directory) is still a str
        return any(value == v and (type(value) is type(v) or isinstance(v, str)
                                   and isinstance(value, str)) for v in self.values)

    def __str__(self) -> str:
        if len(self.values) == 1:
            return repr(self.values[0])
        return "one of " + ", ".join(map(str, self.values))


Constraint = Any  # None, a type, an Interval or Options


def _accepts(constraint: Constraint, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and (constraint is bool
                                                 or not isinstance(value, bool))
    return constraint.accepts(value)


def _describe(constraint: Constraint) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"a {constraint.__name__}"
    return str(constraint)


def describe_constraints(constraints: Iterable[Constraint]) -> str:
    """What ``constraints`` allow, in words (``ensemble plugins NAME`` shows it).

    Examples
    --------
    >>> describe_constraints([None, Interval(int, 1, None)])
    'None or a positive integer'
    """
    described = [_describe(c) for c in constraints]
    return described[0] if len(described) == 1 else \
        f"{', '.join(described[:-1])} or {described[-1]}"


def check_param(name: str, value: Any, constraints: Iterable[Constraint]) -> None:
    """Raise a ConfigError unless ``value`` meets one of ``constraints``."""
    constraints = list(constraints)
    if any(_accepts(c, value) for c in constraints):
        return
    options = [c for c in constraints if isinstance(c, Options)]
    if len(options) == 1 and isinstance(value, str) and len(constraints) == 1:
        choices = [str(v) for v in options[0].values]
        raise ConfigError(f"unknown {name} {value!r}{did_you_mean(value, choices)}; "
                          f"{name} must be {options[0]}")
    raise ConfigError(f"{name} must be {describe_constraints(constraints)}, got {value!r}")


def validate_params(obj: Any, constraints: Mapping[str, Iterable[Constraint]]) -> None:
    """Check each ``obj.<name>`` against ``constraints[name]``, in order."""
    for name, allowed in constraints.items():
        check_param(name, getattr(obj, name), allowed)
