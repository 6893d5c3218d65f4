"""Start-up: `ensemble --help`, `--version` and `plugins`, 10 runs each (min and median),
and the slowest imports of each (`python -X importtime`). Target: under 0.5 s.

    python benchmarks/startup.py        -> results/startup.md and .json (about 30 s)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, report  # noqa: E402

ENSEMBLE = str(Path(sys.executable).with_name("ensemble"))
COMMANDS = [["--help"], ["--version"], ["plugins"], ["plugins", "--json"]]
RUNS = 10
TARGET = 0.5
HEAVY = ("tensorflow", "keras", "sklearn", "pandas", "numpy", "scipy", "matplotlib")


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([ENSEMBLE, *argv], check=True, stdout=subprocess.DEVNULL, cwd=ROOT,
                   stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def slowest_imports(argv: list[str], n: int = 3) -> tuple[list[tuple[str, float]], list[str]]:
    """The top-level imports with the largest cumulative time, and which heavy ones loaded."""
    code = "import sys; from engine.cli import main; sys.exit(main(sys.argv[1:]))"
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *argv], cwd=ROOT,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         env={**os.environ, "COLUMNS": "160"}).stderr
    top, loaded = [], set()
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[12:].split("|"))
        loaded.add(name.split(".")[0])
        if not name.startswith(" ") and not line.split("|")[2].startswith("  "):
            top.append((name.strip(), int(cumulative) / 1e6))
    top.sort(key=lambda item: -item[1])
    return top[:n], sorted(m for m in HEAVY if m in loaded)


def main() -> None:
    for argv in COMMANDS:  # warm the page cache and .pyc files first
        timed(argv)
    rows, data = [], {"runs": RUNS, "target_s": TARGET, "commands": {}}
    for argv in COMMANDS:
        times = [timed(argv) for _ in range(RUNS)]
        top, heavy = slowest_imports(argv)
        command = "ensemble " + " ".join(argv)
        data["commands"][command] = {"min_s": min(times), "median_s": statistics.median(times),
                                     "times_s": times, "slowest_imports": top,
                                     "heavy_modules_loaded": heavy}
        imports = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in top)
        rows.append(f"| `{command}` | {min(times):.3f} | {statistics.median(times):.3f} | "
                    f"{'yes' if statistics.median(times) < TARGET else 'NO'} | {imports} | "
                    f"{', '.join(heavy) or 'none'} |")
    report("startup", "Start-up time of the `ensemble` command",
           [f"Wall-clock seconds of the console script, {RUNS} runs each after one warm-up "
            f"run; the three slowest top-level imports from `python -X importtime` (one run, "
            f"cumulative); which heavy libraries were imported at all. `ensemble plugins` "
            f"reads names and docstrings from the plugins' source "
            f"(`engine/plugin_listing.py`) instead of importing them."],
           ["command", "min s", "median s", f"median < {TARGET} s", "slowest imports",
            "heavy libraries imported"], rows, data)


if __name__ == "__main__":
    main()
