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


def require_extra(extra: str, *modules: str) -> None:
    """Import ``modules``, or raise one line naming the extra that installs them.

    Optional features (``ensemble serve``, MLflow) import their libraries only
    when used, so ``ensemble --help`` and the core never pay for them.

    Parameters
    ----------
    extra : str
        The ``ensemble-engine[extra]`` group that installs ``modules``.
    *modules : str
        Top-level import names, e.g. ``"fastapi"``.

    Raises
    ------
    MissingExtraError
        When one of them cannot be imported.

    Examples
    --------
    >>> require_extra("serve", "json")
    """
    from engine.errors import MissingExtraError

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(
                f"{module} is not installed ({exc.name or module}); this needs the '{extra}' "
                f"extra: pip install 'ensemble-engine[{extra}]'") from None
