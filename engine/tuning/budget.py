"""Budgets: ``--time 10m`` parsed and the deadline it sets; the default trial cap."""

from __future__ import annotations

import math
import re
import time

from engine.errors import ConfigError

DEFAULT_TRIALS = 20  # per member, when neither --time nor --trials is given
# Share of a --time budget kept for the combiner's study (its members' out-of-fold refits).
COMBINER_SHARE = 0.1
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(value: str | float | int | None) -> float | None:
    """Seconds from ``"90s"``, ``"10m"``, ``"1h30m"`` or a number of seconds; None stays None.

    Examples
    --------
    >>> parse_duration("1h30m"), parse_duration("45s"), parse_duration(12)
    (5400.0, 45.0, 12.0)
    >>> parse_duration("ten minutes")
    Traceback (most recent call last):
    ...
    engine.errors.ConfigError: --time 'ten minutes' is not a duration; write e.g. 90s, 10m or 1h30m
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and re.fullmatch(rf"(?:{_PART.pattern})+", text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ConfigError(f"--time {value!r} is not a duration; write e.g. 90s, 10m or 1h30m")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"--time must be a positive duration, got {value!r}")
    return seconds


class Budget:
    """A deadline ``seconds`` from now (none when None).

    Examples
    --------
    >>> budget = Budget(100)
    >>> 99 < budget.left() <= 100, Budget(None).expired()
    (True, False)
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    def left(self) -> float:
        """Seconds left (infinite without a budget)."""
        if self.seconds is None:
            return math.inf
        return self.seconds - (time.monotonic() - self.start)

    def spent(self) -> float:
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return self.left() <= 0
