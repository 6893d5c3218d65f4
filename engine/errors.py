"""User-facing errors: one line that says what went wrong and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EnsembleError(ValueError):
    """Base class for every error the engine raises on bad input.

    The CLI prints ``str(error)`` as a single line and exits non-zero, so the
    message must name the problem and the fix.
    """


class DataError(EnsembleError):
    """The training or prediction data cannot be used as given."""


class ConfigError(EnsembleError):
    """A configuration value or name is invalid."""


class ModelDirectoryError(EnsembleError):
    """A model directory is missing, incomplete, tampered with or unsupported."""


class PluginNotFoundError(ConfigError, KeyError):
    """A plugin or combiner name is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class MissingExtraError(EnsembleError):
    """A command needs an optional dependency group that is not installed."""
