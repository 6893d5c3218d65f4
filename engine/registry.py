"""The plugin registry: a pluggy PluginManager fed by the built-ins, then entry points.

Built-in plugins are the modules named in :data:`DEFAULT_PLUGINS`, registered
through the same hooks as everyone else's (as ``llm/plugins.py`` does); a
third-party package joins through the ``ensemble_engine`` entry-point group.
Nothing else here names a plugin.

``ENSEMBLE_LOAD_PLUGINS`` limits which third-party plugins load: a
comma-separated list of distribution or entry-point names (empty: none), to
find the one that breaks.
"""

from __future__ import annotations

import importlib
import os
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from engine import hookspecs
from engine.errors import PluginNotFoundError, did_you_mean
from engine.version import __version__

ENTRY_POINT_GROUP = "ensemble_engine"
LOAD_PLUGINS_ENV = "ENSEMBLE_LOAD_PLUGINS"
HOOKS = {"plugin": "register_plugins", "combiner": "register_combiners",
         "encoder": "register_encoders", "weights": "register_weights"}
# The built-ins, imported by name and registered like any package's plugins.
DEFAULT_PLUGINS = (
    "engine.bagging",
    "engine.combiners.builtin",
    "plugins.keras_text",
    "plugins.sklearn_pipeline",
    "plugins.tfhub_encoder",
    "plugins.tfidf_lr",
    "plugins.tfidf_nb",
    "plugins.transformer",
    "plugins.transformer_presets",
    "plugins.sentence_encoder",
    "plugins.use_bundled",
)
BUILTIN_PACKAGE = "ensemble-engine"
IN_PROCESS = "(registered in this process)"  # the package column of engine.register_plugin's


@dataclass(frozen=True)
class Registration:
    """One registered class and where it came from."""

    name: str
    cls: type
    kind: str  # "plugin", "combiner", "encoder" or "weights"
    package: str
    version: str
    # "module.QualName" of a class registered in this process (engine.register_plugin), which
    # a saved model names so that a process without it can say what to register; never imported
    registered: str | None = None

    @property
    def description(self) -> str:
        doc = (self.cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


class Registry:
    """Model plugins and combiners registered through the pluggy hooks.

    Parameters
    ----------
    entry_points : bool, default=True
        Load the modules listed under the ``ensemble_engine`` entry-point group
        (those ``ENSEMBLE_LOAD_PLUGINS`` allows, when it is set).
    builtins : bool, default=True
        Load the built-in plugins (:data:`DEFAULT_PLUGINS`).

    Examples
    --------
    >>> registry = Registry()
    >>> registry.get_plugin("tfidf-nb").__name__
    'TfidfNB'
    """

    def __init__(self, entry_points: bool = True, builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        # plugin name -> (package, version) it is credited to
        self._origins: dict[str, tuple[str, str, str | None]] = {}
        if builtins:
            for module in DEFAULT_PLUGINS:
                self.pm.register(importlib.import_module(module), name=module)
                self._origins[module] = (BUILTIN_PACKAGE, __version__, None)
        if entry_points:
            self._load_entry_points()
        self._cache: dict[str, dict[str, Registration]] | None = None

    def _load_entry_points(self) -> None:
        for ep, package, version in plugin_entry_points():
            if self.pm.get_plugin(ep.name) is not None:
                continue  # loaded already
            self.pm.register(ep.load(), name=ep.name)
            self._origins[ep.name] = (package, version, None)

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a module or object that implements the hooks; returns its plugin name."""
        registered = self.pm.register(plugin, name=name)
        self._cache = None
        return registered or self.pm.get_name(plugin)

    def unregister(self, plugin: object | None = None, name: str | None = None) -> None:
        """Undo :meth:`register` or :meth:`register_class` (by object or by plugin name)."""
        self.pm.unregister(plugin, name=name)
        self._cache = None

    def register_class(self, cls: type, kind: str = "plugin") -> str:
        """Register one class directly (handy in notebooks and tests); returns the plugin name.

        Examples
        --------
        >>> from engine.protocol import ModelPlugin
        >>> class Constant(ModelPlugin):
        ...     name = "constant"
        >>> registry = Registry(entry_points=False)
        >>> plugin_name = registry.register_class(Constant)
        >>> registry.get_plugin("constant") is Constant
        True
        >>> registry.unregister(name=plugin_name)
        >>> "constant" in registry.plugins()
        False
        """
        hook = HOOKS[kind]
        module = types.ModuleType(cls.__module__)
        setattr(module, hook, hookspecs.hookimpl(specname=hook)(lambda register: register(cls)))
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        self._origins[f"{kind}:{qualified}"] = (IN_PROCESS, "unknown", qualified)
        return self.register(module, name=f"{kind}:{qualified}")

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
        found: dict[str, dict[str, Registration]] = {kind: {} for kind in HOOKS}
        for kind, hook in HOOKS.items():
            caller = getattr(self.pm.hook, hook)
            # Called one implementation at a time so every class is credited
            # to the package whose entry point registered it.
            for impl in caller.get_hookimpls():
                package, version, registered = self._origins.get(
                    impl.plugin_name, (impl.plugin_name, "unknown", None))
                impl.function(register=self._registrar(found[kind], kind, package, version,
                                                       registered))
        self._cache = found
        return found

    @staticmethod
    def _registrar(table: dict[str, Registration], kind: str, package: str,
                   version: str, registered: str | None = None) -> Callable[[type], None]:
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
            table[name] = Registration(name, cls, kind, package, str(own_version or version),
                                       registered)
        return register


def plugin_entry_points() -> Iterator[tuple[Any, str, str]]:
    """The third-party entry points to load, each with its package's name and version:
    not a built-in (an older install's metadata may list them), allowed by
    ``ENSEMBLE_LOAD_PLUGINS`` when it is set. Reading them imports nothing."""
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    allowed = None if wanted is None else {w.strip() for w in wanted.split(",") if w.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value.partition(":")[0] in DEFAULT_PLUGINS:
            continue
        package = ep.dist.metadata["name"] if ep.dist is not None else ep.name
        if allowed is not None and not {package, ep.name} & allowed:
            continue
        yield ep, package, ep.dist.version if ep.dist else "unknown"


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
    >>> from engine import ModelPlugin
    >>> @register_plugin
    ... class MyModel(ModelPlugin):
    ...     name = "my-model"
    >>> get_registry().get_plugin("my-model") is MyModel
    True
    """
    get_registry().register_class(cls, "plugin")
    return cls
