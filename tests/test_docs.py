"""The manual's code runs: every ```python and ```console block in docs/ and the README runs
here, in order, page by page (or says why not, in a `<!-- not run: reason -->` line just above
it); ```toml blocks parse; the site builds with warnings as errors."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import tomllib

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!-- not run: (.{10,}) -->$")
RUN = {"python", "console"}
SHOWN = {"text", "toml"}  # output, and configs (parsed below)


def blocks(page: Path) -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, reason it is not run) of each fenced block of ``page``."""
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            reason = NOT_RUN.match(lines[i - 1]) if i else None
            found.append((i + 1, match.group(1), "\n".join(lines[i + 1:end]),
                          reason.group(1) if reason else None))
            i = end
        i += 1
    return found


def test_every_code_block_runs_or_says_why_not():
    unmarked = [f"{page.name}:{line} ```{lang}" for page in PAGES
                for line, lang, _, reason in blocks(page)
                if lang not in RUN | SHOWN and reason is None]
    assert unmarked == [], "mark them <!-- not run: reason --> or make them python/console"
    for page in PAGES:
        for _line, lang, code, reason in blocks(page):
            if lang == "toml" and reason is None:
                tomllib.loads(code)  # a config or pyproject snippet that parses


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder holding the repository's examples, as a user's checkout would."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


RUNNABLE = [page for page in PAGES
            if any(lang in RUN and reason is None for _, lang, _, reason in blocks(page))]


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_a_page_runs(page, workdir):
    namespace: dict = {"__name__": f"docs_{page.stem}"}  # a module name with '-', as a notebook's
    for line, lang, code, reason in blocks(page):
        if reason is not None or lang not in RUN:
            continue
        if lang == "python":
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)  # noqa: S102
            continue
        for command in (c[2:] for c in code.splitlines() if c.startswith("$ ")):
            done = subprocess.run(command, shell=True, cwd=workdir, capture_output=True,
                                  text=True, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, f"{page.name}:{line}: {command}\n{done.stderr}"


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("needs the dev extra: pip install -e '.[dev]'")
    done = subprocess.run([mkdocs, "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr


def test_the_benchmarks_page_names_every_result_and_its_cpu():
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    missing = [p.name for p in (ROOT / "benchmarks" / "results").glob("*.md")
               if f"`{p.name}`" not in page]
    assert missing == []


def test_the_readmes_commands_are_the_ones_run_on_your_own_data():
    """The README's console block is not run twice: each of its commands runs there."""
    page = (ROOT / "docs" / "your-own-data.md").read_text()
    readme = [code for _, lang, code, _ in blocks(ROOT / "README.md") if lang == "console"]
    commands = [line for code in readme for line in code.splitlines() if line.startswith("$ ")]
    assert commands and all(command in page for command in commands)
