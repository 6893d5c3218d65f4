"""The plugin registry: a pluggy PluginManager fed by the ``ensemble_engine`` entry points.

Built-in plugins are listed as entry points in this project's own
``pyproject.toml``, so they are found exactly the way a third-party package's
are; nothing here names them.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pluggy

from engine import hookspecs
from engine.errors import PluginNotFoundError, did_you_mean

ENTRY_POINT_GROUP = "ensemble_engine"
HOOKS = {"plugin": "register_plugins", "combiner": "register_combiners",
         "encoder": "register_encoders", "weights": "register_weights"}


@dataclass(frozen=True)
class Registration:
    """One registered class and where it came from."""

    name: str
    cls: type
    kind: str  # "plugin", "combiner", "encoder" or "weights"
    package: str
    version: str

    @property
    def description(self) -> str:
        doc = (self.cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


class Registry:
    """Model plugins and combiners registered through the pluggy hooks.

    Parameters
    ----------
    entry_points : bool, default=True
        Load every module listed under the ``ensemble_engine`` entry-point group.

    Examples
    --------
    >>> registry = Registry()
    >>> registry.get_plugin("tfidf-nb").__name__
    'TfidfNB'
    """

    def __init__(self, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        if entry_points:
            self.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        self._cache: dict[str, dict[str, Registration]] | None = None

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a module or object that implements the hooks."""
        self.pm.register(plugin, name=name)
        self._cache = None

    def register_class(self, cls: type, kind: str = "plugin") -> None:
        """Register one class directly (handy in notebooks and tests)."""
        hook = HOOKS[kind]
        module = types.ModuleType(cls.__module__)
        setattr(module, hook, hookspecs.hookimpl(specname=hook)(lambda register: register(cls)))
        self.register(module, name=f"{kind}:{cls.__module__}.{cls.__qualname__}")

    def plugins(self) -> dict[str, Registration]:
        """All model plugins by name."""
        return self._collect()["plugin"]

    def combiners(self) -> dict[str, Registration]:
        """All combiners by name."""
        return self._collect()["combiner"]

    def encoders(self) -> dict[str, Registration]:
        """All text-encoder backends by name."""
        return self._collect()["encoder"]

    def weights(self) -> dict[str, Registration]:
        """All pretrained weights by name (``ensemble models``)."""
        return self._collect()["weights"]

    def get_weights(self, name: str) -> type:
        """The pretrained weights registered as ``name``; a clear error otherwise."""
        return self._get("weights", name)

    def get_encoder(self, name: str) -> type:
        """The encoder class registered as ``name``; a clear error otherwise."""
        return self._get("encoder", name)

    def get_plugin(self, name: str) -> type:
        """The plugin class registered as ``name``; a clear error otherwise."""
        return self._get("plugin", name)

    def get_combiner(self, name: str) -> type:
        """The combiner class registered as ``name``; a clear error otherwise."""
        return self._get("combiner", name)

    def _get(self, kind: str, name: str) -> type:
        table = self._collect()[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise PluginNotFoundError(
                f"unknown {kind} '{name}'{did_you_mean(name, table)}; registered: {known} "
                f"(run `ensemble plugins` to list them)"
            )
        return table[name].cls

    def _collect(self) -> dict[str, dict[str, Registration]]:
        if self._cache is not None:
            return self._cache
        dists = {id(module): dist for module, dist in self.pm.list_plugin_distinfo()}
        found: dict[str, dict[str, Registration]] = {kind: {} for kind in HOOKS}
        for kind, hook in HOOKS.items():
            caller = getattr(self.pm.hook, hook)
            # Called one implementation at a time so every class is credited
            # to the package whose entry point registered it.
            for impl in caller.get_hookimpls():
                dist = dists.get(id(impl.plugin))
                package = dist.project_name if dist else impl.plugin_name
                version = dist.version if dist else "unknown"
                impl.function(register=self._registrar(found[kind], kind, package, version))
        self._cache = found
        return found

    @staticmethod
    def _registrar(table: dict[str, Registration], kind: str, package: str,
                   version: str) -> Callable[[type], None]:
        def register(cls: type) -> None:
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"{cls!r} registered by {package} has no string `name` attribute")
            if name in table and table[name].cls is not cls:
                warnings.warn(
                    f"{kind} '{name}' from {package} ignored: already registered by "
                    f"{table[name].package}", stacklevel=2)
                return
            own_version = getattr(cls, "version", None)
            table[name] = Registration(name, cls, kind, package, str(own_version or version))
        return register


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, created on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def get_plugin(name: str) -> type:
    """Shortcut for ``get_registry().get_plugin(name)``."""
    return get_registry().get_plugin(name)


def get_combiner(name: str) -> type:
    """Shortcut for ``get_registry().get_combiner(name)``."""
    return get_registry().get_combiner(name)


def register_plugin(cls: type) -> type:
    """Register a plugin class in this process; usable as a class decorator.

    Examples
    --------
    >>> @register_plugin
    ... class MyModel(ModelPlugin):
    ...     name = "my-model"
    """
    get_registry().register_class(cls, "plugin")
    return cls
