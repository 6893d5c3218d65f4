"""kill -9 in the middle of a save, a cache write or a submission: nothing is lost or mixed.

Each test runs tests/crash_harness.py, which forks a writer, kills it with SIGKILL at a
random moment, and checks the result, ENSEMBLE_CRASH_CYCLES times (6 by default;
benchmarks/reliability.py runs many more).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("crash_harness.py")
CYCLES = int(os.environ.get("ENSEMBLE_CRASH_CYCLES", "6"))

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")


def run_harness(mode: str, workdir: Path, cycles: int = CYCLES) -> dict:
    result = subprocess.run([sys.executable, str(HARNESS), mode, str(cycles), str(workdir)],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=600, cwd=HARNESS.parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    log = os.environ.get("ENSEMBLE_RELIABILITY_LOG")
    if log:  # benchmarks/reliability.py collects the numbers for the report
        with open(log, "a") as handle:
            handle.write(json.dumps({"kind": f"crash-{mode}", **counts}) + "\n")
    return counts


def test_killed_saves_leave_the_old_or_the_new_model(tmp_path):
    counts = run_harness("model", tmp_path)
    assert counts["cycles"] == CYCLES
    assert counts["old_or_new"] == CYCLES, counts
    assert counts["lost"] == 0 and counts["mixed"] == 0
    assert counts["leftovers_after_next_save"] == [".model.lock"]  # killed temporaries tidied


def test_killed_cache_writes_leave_only_whole_entries(tmp_path):
    counts = run_harness("cache", tmp_path)
    assert counts["entries_checked"] > 100
    assert counts["damaged"] == 0 and counts["errors"] == 0


def test_killed_submission_writes_leave_the_old_or_the_new_file(tmp_path):
    counts = run_harness("submit", tmp_path)
    assert counts["old_or_new"] == CYCLES and counts["partial"] == 0


@pytest.mark.skipif(sys.platform == "win32", reason="needs flock")
def test_next_write_removes_only_temporaries_of_dead_writers(tmp_path):
    import fcntl

    from engine.io.atomic import STALE_TEMPORARY_SECONDS, atomic_write

    target = tmp_path / "submission.csv"
    long_ago = os.path.getmtime(tmp_path) - 10 * STALE_TEMPORARY_SECONDS
    dead, live, fresh = (tmp_path / f".submission.csv.tmp-{n * 16}" for n in "abc")
    users = tmp_path / ".submission.csv.tmp-notes"  # a user's file with a look-alike name
    for temporary in (dead, live, fresh, users):
        temporary.write_text("id,target\n")
    for temporary in (dead, live, users):
        os.utime(temporary, (long_ago, long_ago))
    with open(live, "rb") as held:  # a writer that is still at work holds its lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with atomic_write(target) as handle:
            handle.write("id,target\n1,0\n")
    assert target.read_text() == "id,target\n1,0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name,
                                                                 fresh.name, users.name])
