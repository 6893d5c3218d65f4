import re
from pathlib import Path

import pytest

from engine import get_registry, register_plugin
from engine.errors import PluginNotFoundError
from engine.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def test_builtins_come_through_entry_points_with_their_package():
    registry = Registry()
    plugins, combiners = registry.plugins(), registry.combiners()
    assert {"tfidf-nb", "tfidf-lr", "sklearn"} <= set(plugins)
    assert {"mean", "vote", "stacking"} <= set(combiners)
    assert plugins["tfidf-nb"].package == "ensemble-engine"
    assert plugins["tfidf-nb"].version == "0.1.0"


def test_without_entry_points_nothing_is_built_in():
    # Proof that built-ins are not special-cased: no entry points, no plugins.
    assert Registry(entry_points=False).plugins() == {}


def test_core_never_imports_a_builtin_plugin():
    pattern = re.compile(r"^\s*(from|import)\s+plugins\b", re.MULTILINE)
    offenders = [p.name for p in (ROOT / "engine").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_unknown_name_suggests_the_closest():
    with pytest.raises(PluginNotFoundError, match=r"did you mean 'tfidf-nb'"):
        get_registry().get_plugin("tfidf-bn")
    with pytest.raises(PluginNotFoundError, match=r"did you mean 'stacking'"):
        get_registry().get_combiner("stackng")


def test_register_plugin_in_process():
    from plugins.tfidf_nb import TfidfNB

    class Renamed(TfidfNB):
        name = "renamed-nb-for-test"

    registry = Registry()
    registry.register_class(Renamed)
    assert registry.get_plugin("renamed-nb-for-test") is Renamed
    assert register_plugin  # the public decorator is exported
