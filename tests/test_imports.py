"""Imports: `ensemble --help` loads nothing heavy (checked, not timed); no cycles in engine/."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "pandas", "tensorflow", "keras", "joblib", "matplotlib", "optuna")

PROBE = """
import sys
from engine.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["predict", "--help"],
                                  ["tune", "--help"], ["plugins"], ["plugins", "--json"]])
def test_cli_answers_without_importing_heavy_libraries(argv):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
                         capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_import_engine_is_light_and_the_api_loads_on_first_use():
    code = ("import sys, engine\nassert 'sklearn' not in sys.modules\n"
            "engine.Ensemble\nprint('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "True"


def _engine_imports() -> dict[str, set[str]]:
    """Module -> the engine modules it imports anywhere (functions too), parents excluded."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "engine").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        graph[name] = {m for m in found if m in modules and m != name
                       and not name.startswith(m + ".")}
    return graph


def test_no_import_cycle_in_engine():
    graph = _engine_imports()

    def reaches(start: str, target: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                if nxt == target:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    assert [m for m in graph if reaches(m, m)] == []


def test_the_model_directory_layer_never_imports_the_ensemble():
    graph = _engine_imports()
    assert all("engine.ensemble" not in graph[m] for m in graph if m.startswith("engine.io"))
