"""Hook specifications: the whole surface a plugin package implements."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "ensemble_engine"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_plugins(register: Callable[[type], None]) -> None:
    """Register model plugin classes: call ``register(MyModel)`` for each."""


@hookspec
def register_combiners(register: Callable[[type], None]) -> None:
    """Register combiner classes: call ``register(MyCombiner)`` for each."""


@hookspec
def register_encoders(register: Callable[[type], None]) -> None:
    """Register text-encoder backends (``engine.encoder.Encoder`` subclasses)."""


@hookspec
def register_weights(register: Callable[[type], None]) -> None:
    """Register pretrained weights (``engine.weights.PinnedWeights`` subclasses)."""
