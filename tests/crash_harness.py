"""Kill -9 a process in the middle of writing, many times, and check what survives.

Run as a script: ``python tests/crash_harness.py MODE CYCLES WORKDIR`` prints one JSON
line of counts. MODE is ``model`` (Ensemble.save), ``cache`` (feature-cache writes) or
``submit`` (the atomic CSV write behind ``submit`` and ``predict``), or ``load`` (loads
while another process saves the same model: CYCLES is the number of loads). This process
prepares the data, then for every cycle forks a worker that writes in a loop, kills it
with SIGKILL after a random delay, and checks the result from here.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _kill_after(work, delay: float) -> None:
    pid = os.fork()
    if pid == 0:  # the worker: write until killed
        try:
            work()
        finally:
            os._exit(1)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _two_versions(root: Path, save_first: bool = True) -> tuple[list, list, list, Path]:
    """Two fitted models, their probabilities on a probe, and the first saved at root/model."""
    from engine import Ensemble
    from engine.testing import make_text_dataset

    X, y = make_text_dataset(2, n_per_class=40, seed=3)
    probe = X[:20]
    versions = [Ensemble({"nb": ("tfidf-nb", {"alpha": alpha})}, cv=2, random_state=0).fit(X, y)
                for alpha in (0.1, 5.0)]
    target = root / "model"
    if save_first:
        versions[0].save(target)
    return versions, [v.predict_proba(probe) for v in versions], probe, target


def model_cycles(cycles: int, root: Path) -> dict:
    from engine import load

    versions, expected, probe, target = _two_versions(root)
    counts = {"cycles": 0, "old_or_new": 0, "lost": 0, "mixed": 0, "saves_per_cycle": []}

    def work():
        i = 0
        while True:
            versions[i % 2].save(target)
            i += 1

    for _ in range(cycles):
        _kill_after(work, random.uniform(0.0, 0.4))
        counts["cycles"] += 1
        try:
            proba = load(target).predict_proba(probe)
        except Exception as exc:  # noqa: BLE001 - any failure here is a lost model
            counts["lost"] += 1
            counts.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
            continue
        if any(np.array_equal(proba, e) for e in expected):
            counts["old_or_new"] += 1
        else:
            counts["mixed"] += 1
    versions[1].save(target)  # a clean save afterwards tidies what the kills left
    counts["leftovers_after_next_save"] = sorted(p.name for p in root.iterdir()
                                                 if p.name.startswith(".model"))
    del counts["saves_per_cycle"]
    return counts


def cache_cycles(cycles: int, root: Path) -> dict:
    from engine.encoder import Encoder
    from engine.features import FeatureCache

    class Hashing(Encoder):
        """A deterministic encoder: the vector is a function of the text."""

        name, dim = "hashing-test", 64

        @property
        def identity(self) -> str:
            return "hashing-test/1"

        def _encode(self, texts):
            return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).random(self.dim)
                             for t in texts])

    encoder = Hashing()
    cache = FeatureCache(root / "cache")
    counts = {"cycles": 0, "entries_checked": 0, "damaged": 0, "errors": 0}

    def work():
        rng = random.Random(os.getpid())
        while True:
            texts = [f"tweet {rng.randrange(10**9)}" for _ in range(200)]
            cache.encode(encoder, texts)

    for _ in range(cycles):
        _kill_after(work, random.uniform(0.05, 0.4))
        counts["cycles"] += 1
    FeatureCache.forget()
    reader = FeatureCache(root / "cache")
    files = list(reader._entries())  # entries and their temporaries, not the marker and key
    folder = reader._folder(encoder)
    for path in files:
        if path.name.startswith("."):
            continue  # a temporary the kill left behind: never read as an entry
        counts["entries_checked"] += 1
        try:
            vector = reader._read(path, encoder.dim)
        except Exception:  # noqa: BLE001
            counts["errors"] += 1
            continue
        if vector is None:
            counts["damaged"] += 1  # would be recomputed; a rename should never leave one
    counts["temporaries_left"] = sum(p.name.startswith(".") for p in files)
    counts["in_encoder_folder"] = sum(folder in p.parents for p in files)
    return counts


def submit_cycles(cycles: int, root: Path) -> dict:
    import pandas as pd

    from engine.io.atomic import atomic_write

    rows = 200_000
    frames = [pd.DataFrame({"id": np.arange(rows), "target": np.full(rows, v)}) for v in (0, 1)]
    texts = [f.to_csv(index=False) for f in frames]
    target = root / "submission.csv"
    target.write_text(texts[0])
    counts = {"cycles": 0, "old_or_new": 0, "partial": 0}

    def work():
        i = 0
        while True:
            with atomic_write(target, newline="") as handle:
                frames[i % 2].to_csv(handle, index=False)
            i += 1

    for _ in range(cycles):
        _kill_after(work, random.uniform(0.0, 0.5))
        counts["cycles"] += 1
        counts["old_or_new" if target.read_text() in texts else "partial"] += 1
    counts["temporaries_left"] = sum(p.name.startswith(".") for p in root.iterdir())
    return counts


def save_forever(_: int, root: Path) -> None:
    """The saver of ``load``: the two versions in turn at root/model, counted, until killed."""
    versions, _, _, target = _two_versions(root, save_first=False)
    i = 0
    while True:
        versions[i % 2].save(target)
        i += 1
        (root / "saves.tmp").write_text(str(i))  # replaced whole: a read never sees it empty
        os.replace(root / "saves.tmp", root / "saves")


def _saves(root: Path) -> int:
    try:
        return int((root / "saves").read_text() or 0)
    except (OSError, ValueError):
        return 0


def load_cycles(loads: int, root: Path) -> dict:
    """Load a model ``loads`` times while another process saves it again and again.

    The saver is a process of its own (started, not forked: a fork of a process
    with threads can hang), and the loads start once it has saved.
    """
    from engine import load

    _, expected, probe, target = _two_versions(root)
    saver = subprocess.Popen([sys.executable, __file__, "saver", "0", str(root)],
                             stdin=subprocess.DEVNULL)
    counts = {"loads": 0, "failures": 0, "mixed": 0, "errors": []}
    try:
        deadline = time.monotonic() + 300
        while _saves(root) == 0 and saver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first, start = _saves(root), time.perf_counter()
        for _ in range(loads):
            counts["loads"] += 1
            try:
                proba = load(target).predict_proba(probe)
            except Exception as exc:  # noqa: BLE001 - any failure is a spurious one
                counts["failures"] += 1
                counts["errors"].append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            if not any(np.array_equal(proba, e) for e in expected):
                counts["mixed"] += 1
        counts["saves_meanwhile"] = _saves(root) - first
        counts["seconds"] = round(time.perf_counter() - start, 1)
    finally:
        saver.kill()
        saver.wait()
    counts["errors"] = counts["errors"][:5]
    return counts


if __name__ == "__main__":
    mode, n, workdir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    workdir.mkdir(parents=True, exist_ok=True)
    random.seed(int(os.environ.get("CRASH_SEED", "0")))
    run = {"model": model_cycles, "cache": cache_cycles, "submit": submit_cycles,
           "load": load_cycles, "saver": save_forever}[mode]
    print(json.dumps(run(n, workdir)))
