"""Resolve ``"package.module:attribute"`` strings, so config files can name Python objects."""

from __future__ import annotations

import importlib
from typing import Any

from engine.errors import ConfigError
from engine.io.trust import refuse_stored


def import_object(spec: str) -> Any:
    """Import ``attribute`` from ``package.module`` given as ``"package.module:attribute"``.

    A string read from a model directory is refused (see :mod:`engine.io.trust`):
    importing runs the module's code.
    """
    refuse_stored(spec, "import string")
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
    named = spec if isinstance(spec, str) else None
    if named is not None:
        spec = import_object(spec)
    if callable(spec) and not hasattr(spec, "get_params") or isinstance(spec, type):
        try:
            spec = spec()
        except (Exception, SystemExit) as exc:  # e.g. "sys:exit" or "os:abort"-like mistakes
            raise ConfigError(f"calling '{named or getattr(spec, '__name__', spec)}' to build an "
                              f"estimator failed ({type(exc).__name__}: {exc}); name a "
                              f"scikit-learn estimator class or a function returning one"
                              ) from None
    if named is not None and not hasattr(spec, "get_params"):
        raise ConfigError(f"'{named}' gave a {type(spec).__name__}, not a scikit-learn "
                          f"estimator; name an estimator class or a function returning one")
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
