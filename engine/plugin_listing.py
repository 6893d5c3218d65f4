"""``ensemble plugins`` without importing a plugin: what each module registers, read from its
source.

The registry imports every plugin module to call its hooks, and a plugin
module imports scikit-learn at least (a second or two on a 2-core machine),
TensorFlow at worst. Listing needs only names, kinds and docstrings, so
this reads them from the source files the registry would import: the hook
functions' ``register(Class)`` calls, each class's ``name`` and docstring,
following ``from x import Class`` as the interpreter would. Nothing is
executed. A module whose registration this cannot read (a computed name, a
loop over something else) makes the listing fall back to the registry, as
before: slower, never different.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.registry import BUILTIN_PACKAGE, DEFAULT_PLUGINS, HOOKS, plugin_entry_points
from engine.version import __version__

KINDS = {hook: kind for kind, hook in HOOKS.items()}
LISTED = ("plugin", "combiner", "encoder")  # what `ensemble plugins` shows, in this order


@dataclass(frozen=True)
class Listed:
    """One registered class, as `ensemble plugins` shows it."""

    name: str
    kind: str
    package: str
    version: str
    description: str


class Unreadable(Exception):
    """A registration that cannot be read without running the module."""


def _source(module: str) -> tuple[Path, str]:
    """The file of ``module`` and its package, found as the import system would but without
    importing the parent packages (``engine.combiners``' own imports are heavy)."""
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])  # a top-level name: nothing imported
    for depth in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            raise Unreadable(module)
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(parts[:depth + 1]), list(spec.submodule_search_locations))
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise Unreadable(module)
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    return Path(spec.origin), package


def _parse(module: str) -> tuple[ast.Module, str]:
    path, package = _source(module)
    return ast.parse(path.read_text(encoding="utf-8")), package


def _is_hookimpl(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "hookimpl") or \
        (isinstance(target, ast.Attribute) and target.attr == "hookimpl")


def _registered(function: ast.FunctionDef) -> list[str]:
    """The class names a hook function passes to ``register``: ``register(A)`` statements,
    or ``for x in (A, B): register(x)``."""
    register = function.args.args[0].arg if function.args.args else None

    def call(statement: ast.stmt) -> str | None:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            c = statement.value
            if isinstance(c.func, ast.Name) and c.func.id == register and len(c.args) == 1 \
                    and not c.keywords and isinstance(c.args[0], ast.Name):
                return c.args[0].id
        return None

    names = []
    for statement in function.body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring
        if call(statement):
            names.append(call(statement))
        elif isinstance(statement, ast.For) and isinstance(statement.target, ast.Name) \
                and isinstance(statement.iter, (ast.Tuple, ast.List)) \
                and all(isinstance(e, ast.Name) for e in statement.iter.elts) \
                and len(statement.body) == 1 and call(statement.body[0]) == statement.target.id:
            names.extend(e.id for e in statement.iter.elts)
        else:
            raise Unreadable(function.name)
    return names


def _class(module: str, name: str, depth: int = 0) -> tuple[str, str | None, str]:
    """(registry name, own version or None, docstring's first line) of ``module.name``."""
    if depth > 8:
        raise Unreadable(module)
    tree, package = _parse(module)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            attributes = {}
            for item in node.body:
                targets = item.targets if isinstance(item, ast.Assign) else \
                    [item.target] if isinstance(item, ast.AnnAssign) and item.value else []
                for target in targets:
                    if isinstance(target, ast.Name) and isinstance(item.value, ast.Constant) \
                            and isinstance(item.value.value, str):
                        attributes[target.id] = item.value.value
            if "name" not in attributes:  # inherited or computed
                raise Unreadable(f"{module}.{name}")
            doc = (ast.get_docstring(node, clean=False) or "").strip().splitlines()
            return attributes["name"], attributes.get("version"), doc[0] if doc else ""
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    source = importlib.util.resolve_name("." * node.level + (node.module or ""),
                                                         package) if node.level else node.module
                    return _class(source or "", alias.name, depth + 1)
    raise Unreadable(f"{module}.{name}")


def read_module(module: str, package: str, version: str) -> list[Listed]:
    """What ``module``'s hooks register, read from its source; :class:`Unreadable` if it
    cannot be told without running it."""
    tree, _ = _parse(module)
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in KINDS and \
                any(_is_hookimpl(d) for d in node.decorator_list):
            for class_name in _registered(node):
                name, own_version, description = _class(module, class_name)
                found.append(Listed(name, KINDS[node.name], package, own_version or version,
                                    description))
    return found


def listing() -> list[Listed]:
    """Every registered plugin, combiner and encoder, as the registry would list them."""
    sources = [(module, BUILTIN_PACKAGE, __version__) for module in DEFAULT_PLUGINS]
    try:
        for ep, package, version in plugin_entry_points():
            if ":" in ep.value:  # an attribute of the module: only running it tells
                raise Unreadable(ep.value)
            sources.append((ep.value, package, version))
        tables: dict[str, dict[str, Listed]] = {kind: {} for kind in LISTED}
        for module, package, version in sources:
            for entry in read_module(module, package, version):
                if entry.kind in tables:
                    tables[entry.kind].setdefault(entry.name, entry)  # the first one wins
    except (Unreadable, SyntaxError, OSError, ImportError, ValueError):
        return _from_registry()
    return [entry for kind in LISTED for entry in tables[kind].values()]


def _from_registry(registry: Any = None) -> list[Listed]:
    from engine.registry import get_registry

    registry = registry or get_registry()
    return [Listed(e.name, e.kind, e.package, e.version, e.description)
            for e in [*registry.plugins().values(), *registry.combiners().values(),
                      *registry.encoders().values()]]
