"""Members and combiners from what a user writes: an instance, ``"name"``, ``("name", {...})``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.base import clone

from engine import registry
from engine.combiners.base import Combiner
from engine.errors import ConfigError, did_you_mean
from engine.protocol import ModelPluginProtocol
from engine.seeding import seeded

MemberSpec = Any  # a plugin instance, a registry name, or (name, params)


def construct(cls: type, params: Mapping[str, Any], label: str) -> Any:
    """``cls(**params)``; a parameter it does not take is one line with the closest one and
    the list of its parameters (``label`` says what is built: "plugin 'tfidf-lr'")."""
    import inspect

    signature = inspect.signature(cls)
    valid = [p.name for p in signature.parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    for key in params:
        if key not in valid and not takes_any:
            raise ConfigError(f"invalid parameter '{key}' for {label} ({cls.__name__})"
                              f"{did_you_mean(key, valid)}; its parameters: "
                              f"{', '.join(sorted(valid)) or 'none'} (`ensemble plugins "
                              f"{getattr(cls, 'name', cls.__name__)}` shows their defaults)")
    try:
        return cls(**dict(params))
    except TypeError as exc:
        raise ConfigError(f"{label}: {exc}") from exc


def build_member(spec: MemberSpec) -> ModelPluginProtocol:
    """An unfitted plugin instance from an instance, ``"name"`` or ``("name", {params})``."""
    if isinstance(spec, str):
        spec = (spec, {})
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        name, params = spec
        return construct(registry.get_plugin(name), params, f"plugin '{name}'")
    if all(hasattr(spec, m) for m in ("fit", "predict_proba", "save", "get_params")):
        return clone(spec)
    raise ConfigError(f"a member must be a plugin instance, a plugin name or (name, params); "
                      f"got {spec!r}")


def build_combiner(spec: Any, random_state: int | None = None) -> Combiner:
    """An unfitted combiner from an instance, ``"name"`` or ``("name", {params})``."""
    if isinstance(spec, str):
        spec = (spec, {})
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        name, params = spec
        combiner = construct(registry.get_combiner(name), params, f"combiner '{name}'")
    elif isinstance(spec, Combiner):
        combiner = clone(spec)
    else:
        raise ConfigError(f"combiner must be a name like 'stacking', (name, params) or a "
                          f"Combiner; got {spec!r}")
    return seeded(combiner, random_state)
