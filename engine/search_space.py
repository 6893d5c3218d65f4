"""Search spaces: the parameters of a plugin (or combiner) worth tuning, and their ranges.

A plugin declares its space with an optional classmethod ``search_space()``
returning ``{parameter: Float | Int | Categorical}``; a config file may
override it in ``[tune.space.<member>]``. The spec is plain data, so this
module needs no Optuna: :meth:`Float.suggest` and friends only call the
``suggest_*`` methods of the trial they are given.

Examples
--------
>>> space = {"alpha": Float(1e-3, 10.0, log=True), "ngram_range": Categorical([(1, 1), (1, 2)])}
>>> check_space(space, "tfidf-nb")
>>> space["ngram_range"].decode(space["ngram_range"].encode((1, 2)))
(1, 2)
>>> Float(1.0, 0.1)
Traceback (most recent call last):
...
engine.errors.ConfigError: a Float range needs low < high, got low=1.0, high=0.1
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.errors import ConfigError

STUDY_CHANGED = ("the study was changed or made by another config: pass --study NEW-NAME or "
                 "another --storage")
# What Optuna stores as a categorical choice as it is; anything else is stored as JSON text.
_PLAIN = (type(None), bool, int, float, str)


def _is_number(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real) and math.isfinite(value)


@dataclass(frozen=True)
class _Range:
    """Numbers of ``kind`` from ``low`` to ``high``, both included, on a log scale if ``log``."""

    low: float
    high: float
    log: bool = False
    kind: ClassVar[type] = float

    def __post_init__(self) -> None:
        _check_bounds(self, self.kind)

    def contains(self, value: Any) -> bool:
        return _is_number(value, self.kind) and self.low <= value <= self.high

    def widened(self, value: Any) -> _Range:
        """The smallest range of this kind that also holds ``value``."""
        return type(self)(min(self.low, value), max(self.high, value), self.log)

    def encode(self, value: Any) -> Any:
        return value

    def decode(self, stored: Any) -> Any:
        return stored


@dataclass(frozen=True)
class Float(_Range):
    """Real numbers from ``low`` to ``high`` (a log scale for scales like ``C`` or ``alpha``).

    Parameters
    ----------
    low, high : float
    log : bool, default=False
    """

    kind: ClassVar[type] = float

    def suggest(self, trial: Any, name: str) -> float:
        """The value ``trial`` proposes for parameter ``name``."""
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Int(_Range):
    """Integers from ``low`` to ``high``, both included.

    Parameters
    ----------
    low, high : int
    log : bool, default=False
    """

    kind: ClassVar[type] = int

    def suggest(self, trial: Any, name: str) -> int:
        """The value ``trial`` proposes for parameter ``name``."""
        return trial.suggest_int(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Categorical:
    """One of ``choices``; tuples and lists (``ngram_range``) are fine.

    Parameters
    ----------
    choices : sequence
        At least one value: None, bool, int, float, str, or tuples/lists of them.
    """

    choices: tuple[Any, ...]

    def __init__(self, choices: Sequence[Any]) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or not choices:
            raise ConfigError(f"Categorical needs a non-empty list of choices, got {choices!r}")
        values = tuple(tuple(c) if isinstance(c, list) else c for c in choices)
        for value in values:
            try:
                json.dumps(value)
            except TypeError:
                raise ConfigError(f"a Categorical choice must be None, a bool, number, string or "
                                  f"a tuple of them, got {value!r}") from None
        object.__setattr__(self, "choices", values)

    def suggest(self, trial: Any, name: str) -> Any:
        """The value ``trial`` proposes for parameter ``name``."""
        stored = trial.suggest_categorical(name, [self.encode(c) for c in self.choices])
        return self.decode(stored)

    def contains(self, value: Any) -> bool:
        value = tuple(value) if isinstance(value, list) else value
        return any(value == c and type(value) is type(c) for c in self.choices)

    def widened(self, value: Any) -> Categorical:
        """These choices, and ``value`` first when it is not one of them."""
        return Categorical([value, *self.choices])

    def encode(self, value: Any) -> Any:
        """A value as the study stores it: tuples as JSON text (Optuna keeps plain types only)."""
        return value if isinstance(value, _PLAIN) else json.dumps(list(value))

    def decode(self, stored: Any) -> Any:
        """The inverse of :meth:`encode`."""
        return decode(stored)


def decode(stored: Any) -> Any:
    """A parameter value as a study stored it, back as the plugin takes it (tuples).

    A study is data someone may have edited: a stored tuple must be a flat JSON list.
    """
    if isinstance(stored, str) and stored.startswith("["):
        try:
            value = json.loads(stored)
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, list) or any(isinstance(v, (list, dict)) for v in value):
            raise ConfigError(f"a study holds the choice {_short(stored)}, which is not a flat "
                              f"list of values; {STUDY_CHANGED}")
        return tuple(value)
    return stored


def stored_params(stored: Mapping[str, Any], space: Mapping[str, Distribution],
                  owner: str) -> dict[str, Any]:
    """A trial's parameters as a study stored them, decoded and checked against ``space``.

    A copied study may have been edited: every name must be in the space and
    every value within its range, before any is written into a tuned config.

    Examples
    --------
    >>> stored_params({"alpha": -5.0}, {"alpha": Float(1e-3, 3.0, log=True)}, "nb")
    Traceback (most recent call last):
    ...
    engine.errors.ConfigError: nb: a study's trial sets alpha = -5.0, outside its search \
space low=0.001, high=3.0; the study was changed or made by another config: pass --study \
NEW-NAME or another --storage
    """
    values = {}
    for name, value in stored.items():
        dist = space.get(name) if isinstance(name, str) else None
        if dist is None:
            raise ConfigError(f"{owner}: a study's trial sets {_short(name)}, which is not in "
                              f"the search space ({', '.join(sorted(space))}); {STUDY_CHANGED}")
        decoded = dist.decode(value)
        if not dist.contains(decoded):
            raise ConfigError(f"{owner}: a study's trial sets {name} = {_short(decoded)}, "
                              f"outside its search space {_show(dist)}; {STUDY_CHANGED}")
        values[name] = decoded
    return values


def _short(value: Any) -> str:
    """``repr(value)``, cut short (a study's values may be anything)."""
    from engine.text_safety import clean

    text = repr(value)
    return clean(text if len(text) <= 60 else text[:57] + "...")


Distribution = Float | Int | Categorical


def _check_bounds(dist: _Range, kind: type) -> None:
    name = type(dist).__name__
    if not (_is_number(dist.low, kind) and _is_number(dist.high, kind)):
        noun = "integers" if kind is int else "finite numbers"
        raise ConfigError(f"an {name} range needs {noun} for low and high, got "
                          f"low={dist.low!r}, high={dist.high!r}")
    if not dist.low < dist.high:
        raise ConfigError(f"a {name} range needs low < high, got low={dist.low!r}, "
                          f"high={dist.high!r}")
    if dist.log and dist.low <= 0:
        raise ConfigError(f"a log-scale {name} range needs low > 0, got low={dist.low!r}")


def check_space(space: Any, owner: str) -> None:
    """ConfigError unless ``space`` maps parameter names to Float, Int or Categorical."""
    if not isinstance(space, Mapping):
        raise ConfigError(f"{owner}: search_space() must return a dict of parameter -> Float, "
                          f"Int or Categorical, got {type(space).__name__}")
    for name, dist in space.items():
        if not isinstance(name, str) or not isinstance(dist, (Float, Int, Categorical)):
            raise ConfigError(f"{owner}: search space entry {name!r} must map a parameter name "
                              f"to Float, Int or Categorical, got {dist!r}")


def declared_space(cls: type, params: Mapping[str, Any] | None = None
                   ) -> dict[str, Distribution]:
    """The space a plugin or combiner class declares (empty when it declares none), checked.

    ``params`` (the fixed parameters) go to a ``search_space`` that takes an argument.
    """
    import inspect

    method = getattr(cls, "search_space", None)
    if method is None:
        return {}
    owner = getattr(cls, "name", None) or cls.__name__
    takes_params = bool(inspect.signature(method).parameters)
    space = method(dict(params or {})) if takes_params else method()
    check_space(space, owner)
    return dict(space)


def parse_distribution(value: Any, where: str) -> Distribution:
    """A distribution from config data: ``{low, high, log}`` or a list of choices.

    Examples
    --------
    >>> parse_distribution({"low": 0.01, "high": 10, "log": True}, "nb.alpha")
    Float(low=0.01, high=10.0, log=True)
    >>> parse_distribution({"low": 1, "high": 3}, "nb.min_df")
    Int(low=1, high=3, log=False)
    >>> parse_distribution([[1, 1], [1, 2]], "nb.ngram_range")
    Categorical(choices=((1, 1), (1, 2)))
    """
    if isinstance(value, list):
        return Categorical(value)
    if not isinstance(value, Mapping) or not {"low", "high"} <= set(value) or \
            set(value) - {"low", "high", "log"}:
        raise ConfigError(f"{where}: a range is {{low = ..., high = ..., log = true|false}} or a "
                          f"list of choices, got {value!r}")
    low, high, log = value["low"], value["high"], value.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")
    try:
        if _is_number(low, int) and _is_number(high, int):
            return Int(int(low), int(high), log)
        if _is_number(low, float) and _is_number(high, float):
            return Float(float(low), float(high), log)
        return Float(low, high, log)  # names the wrong type
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_against(space: Mapping[str, Distribution], declared: Mapping[str, Distribution],
                  defaults: Mapping[str, Any], owner: str) -> dict[str, Distribution]:
    """``space`` checked: each parameter one the plugin takes, with a range of the kind it declares.

    ``defaults`` are the plugin's parameters (``get_params(deep=False)``). An
    integer range for a parameter declared real becomes a real range.
    """
    from engine.errors import did_you_mean

    checked = {}
    for name, dist in space.items():
        if name not in defaults:
            raise ConfigError(f"{owner} has no parameter '{name}'{did_you_mean(name, defaults)}; "
                              f"its parameters: {', '.join(sorted(defaults))}")
        wanted = declared.get(name)
        if wanted is not None and type(wanted) is not type(dist) and \
                not (isinstance(wanted, Float) and isinstance(dist, Int)):
            raise ConfigError(f"{owner}.{name} takes {_kind(wanted)}, but the range given is "
                              f"{_kind(dist)}: {_show(dist)}")
        if isinstance(wanted, Float) and isinstance(dist, Int):
            dist = Float(float(dist.low), float(dist.high), dist.log)
        checked[name] = dist
    return checked


def _kind(dist: Distribution) -> str:
    return {Float: "real numbers", Int: "integers", Categorical: "a list of choices"}[type(dist)]


def _show(dist: Distribution) -> str:
    if isinstance(dist, Categorical):
        return repr(list(dist.choices))
    return f"low={dist.low}, high={dist.high}"


def points(dist: Distribution) -> list[Any]:
    """A few values of ``dist`` to try a constructor with: its ends, or every choice."""
    if isinstance(dist, Categorical):
        return list(dist.choices)
    return [dist.low, dist.high]
