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
    # Proof that built-ins are not special-cased: without loading them, no plugins.
    assert Registry(entry_points=False, builtins=False).plugins() == {}


def test_builtins_load_without_any_installed_metadata():
    # A checkout that is not pip-installed (or a stale egg-info) still has every built-in.
    registry = Registry(entry_points=False)
    assert {"tfidf-nb", "transformer", "fold-average"} <= set(registry.plugins())
    assert {"mean", "cascade"} <= set(registry.combiners())
    assert registry.plugins()["tfidf-nb"].package == "ensemble-engine"
    assert "minilm" in registry.weights()


def test_load_plugins_variable_limits_third_party_plugins(monkeypatch):
    from engine import registry as registry_module

    loaded = []
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [
        _FakeEntryPoint("good", "good_pkg", loaded), _FakeEntryPoint("broken", "bad_pkg", loaded)])
    monkeypatch.setenv("ENSEMBLE_LOAD_PLUGINS", "good-package")
    Registry()
    assert loaded == ["good"]
    monkeypatch.setenv("ENSEMBLE_LOAD_PLUGINS", "")
    loaded.clear()
    assert "tfidf-nb" in Registry().plugins() and loaded == []  # built-ins always load


class _FakeEntryPoint:
    def __init__(self, name, module, loaded):
        import types

        self.name, self.value, self._loaded = name, f"{module}", loaded
        self.dist = types.SimpleNamespace(metadata={"name": f"{name}-package"}, version="1.0")

    def load(self):
        import types

        self._loaded.append(self.name)
        return types.ModuleType(self.value)




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
    name = registry.register_class(Renamed)
    assert registry.get_plugin("renamed-nb-for-test") is Renamed
    registry.unregister(name=name)
    assert "renamed-nb-for-test" not in registry.plugins()
    assert register_plugin  # the public decorator is exported


PLUGIN_MODULE = '''
from plugins.tfidf_nb import TfidfNB


class LenPrior(TfidfNB):
    """Naive Bayes under another name: a plugin a notebook registers itself."""

    name = "len-prior"
'''

LOAD_SCRIPT = '''
import sys
import engine
if sys.argv[2] == "register":
    from nb_len import LenPrior
    engine.register_plugin(LenPrior)
try:
    model = engine.load(sys.argv[1])
except engine.errors.ModelDirectoryError as exc:
    print("error:", exc, "| imported" if "nb_len" in sys.modules else "| not imported")
else:
    print(model.predict(["forest fire near the river"]).tolist())
'''


def test_a_registered_plugin_round_trips(tmp_path, monkeypatch, binary_texts):
    """Saved with engine.register_plugin: loads here and in any process that registers it;
    a process that has not gets one line naming the plugin and what to register."""
    import subprocess
    import sys

    from engine import Ensemble, load

    (tmp_path / "nb_len.py").write_text(PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from nb_len import LenPrior

    name = get_registry().register_class(LenPrior)
    try:
        texts, y = binary_texts
        model = Ensemble({"prior": "len-prior", "nb": "tfidf-nb"}, cv=3, random_state=0)
        expected = model.fit(texts, y).predict(["forest fire near the river"]).tolist()
        model.save(tmp_path / "model")
        assert load(tmp_path / "model").predict(["forest fire near the river"]).tolist() \
            == expected
    finally:
        get_registry().unregister(name=name)
    (tmp_path / "load.py").write_text(LOAD_SCRIPT)
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}

    def run(mode):
        return subprocess.run([sys.executable, str(tmp_path / "load.py"),
                               str(tmp_path / "model"), mode], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()

    assert run("register") == str(expected)
    # nb_len is importable in that process, yet loading never imports what a manifest names
    message = run("no")
    assert message.count("\n") == 0
    assert "needs plugin 'len-prior'" in message and "engine.register_plugin(LenPrior)" in message
    assert "class nb_len.LenPrior" in message and message.endswith("| not imported")


def test_plugin_listing_reads_the_source_and_agrees_with_the_registry():
    """`ensemble plugins` lists exactly what the registry registers, without importing."""
    from engine import plugin_listing

    # a fresh registry: other tests register classes in this process's one
    assert plugin_listing.listing() == plugin_listing._from_registry(Registry())


def test_plugin_listing_falls_back_to_the_registry_for_computed_registrations(
        tmp_path, monkeypatch):
    from types import SimpleNamespace

    from engine import plugin_listing

    (tmp_path / "dyn_plugins.py").write_text(
        "from engine import hookimpl\n\n@hookimpl\ndef register_plugins(register):\n"
        "    for cls in make_classes():\n        register(cls)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(plugin_listing.Unreadable):
        plugin_listing.read_module("dyn_plugins", "dyn", "1.0")
    monkeypatch.setattr(plugin_listing, "plugin_entry_points",
                        lambda: iter([(SimpleNamespace(value="dyn_plugins"), "dyn", "1.0")]))
    monkeypatch.setattr(plugin_listing, "_from_registry", lambda: ["from the registry"])
    assert plugin_listing.listing() == ["from the registry"]
    assert "dyn_plugins" not in __import__("sys").modules  # read, never imported
