"""Resolve ``"package.module:attribute"`` strings, so config files can name Python objects."""

from __future__ import annotations

import importlib
from typing import Any

from engine.errors import ConfigError


def import_object(spec: str) -> Any:
    """Import ``attribute`` from ``package.module`` given as ``"package.module:attribute"``."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"'{spec}' must look like 'package.module:attribute'")
    try:
        obj = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import '{spec}': {exc}") from exc
    return obj


def build_estimator(spec: Any) -> Any:
    """An estimator from an estimator, a class or factory, or an import string for either."""
    if isinstance(spec, str):
        spec = import_object(spec)
    if callable(spec) and not hasattr(spec, "get_params") or isinstance(spec, type):
        spec = spec()
    return spec
