"""kill -9 ``ensemble tune`` again and again, resume it, and check the study.

Run as a script: ``python tests/tune_harness.py CYCLES WORKDIR`` prints one JSON line
of counts. Every cycle starts a real ``ensemble tune`` process on one SQLite study,
waits until it is inside a trial, waits a random moment more and SIGKILLs it,
recording every finished trial first. Then it waits out the heartbeat grace
period and runs ``tune`` once more to the end, so the killed trials are retried.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: tests/ is on the path, the project is not
from tests.helpers import write_config  # noqa: E402

TRAIN = ROOT / "examples" / "data" / "disaster-tweets" / "train.csv"
HEARTBEAT = 1  # seconds; a killed trial is stale after three
MEMBERS = ("nb", "lr")

def _tune(config: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "-q", "tune", str(config), "--storage", url,
            "--heartbeat", str(HEARTBEAT), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                         os.environ.get("PYTHONPATH", "")])}


def _studies(url: str) -> dict[str, list]:
    import optuna

    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    try:
        names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
        return {m: optuna.load_study(study_name=f"kill:{m}", storage=storage).trials
                for m in MEMBERS if f"kill:{m}" in names}
    finally:
        storage.engine.dispose()


def _finished(url: str) -> dict[tuple[str, int], tuple]:
    from optuna.trial import TrialState

    return {(member, t.number): (t.state.name, t.value, tuple(sorted(t.params.items())))
            for member, trials in _studies(url).items() for t in trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}


def _inside_a_trial(url: str, pid: int, deadline: float) -> bool:
    from optuna.trial import TrialState

    while True:  # looks at least once, so a past deadline means "is it now?"
        try:
            for trials in _studies(url).values():
                if any(t.state == TrialState.RUNNING and
                       str(t.user_attrs.get("worker", "")).endswith(f":{pid}") for t in trials):
                    return True
        except Exception:  # noqa: BLE001 - the study may not exist yet
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def cycles(n: int, root: Path, seed: int = 0) -> dict:
    import pandas as pd
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    train = root / "train.csv"
    pd.read_csv(TRAIN).sample(400, random_state=seed).to_csv(train, index=False)
    config = root / "kill.toml"
    write_config(config, train, name="kill", ensemble={"combiner": "mean"})
    url = f"sqlite:///{root / 'study.db'}"
    seen: dict[tuple[str, int], tuple] = {}
    counts = {"cycles": 0, "killed_inside_a_trial": 0, "lost": 0}
    # Trials on 400 rows are short, so a kill can land between two of them; such a
    # cycle kills no trial and is repeated (up to 3n cycles) until n kills hit one.
    while counts["killed_inside_a_trial"] < n and counts["cycles"] < 3 * n:
        process = subprocess.Popen(_tune(config, url, "--time", "10m"), cwd=root, env=_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _inside_a_trial(url, process.pid, time.monotonic() + 120)  # started
        time.sleep(rng.uniform(0, 1.5))
        seen.update(_finished(url))
        _inside_a_trial(url, process.pid, time.monotonic() + 60)
        process.send_signal(signal.SIGKILL)
        process.wait()
        counts["cycles"] += 1
        # A trial left RUNNING by a dead worker is one the kill interrupted.
        counts["killed_inside_a_trial"] += _inside_a_trial(url, process.pid, 0.0)
    time.sleep(3 * HEARTBEAT + 1)  # the killed trials are stale now: the next run retries them
    before = max(sum(1 for k in _finished(url) if k[0] == m) for m in MEMBERS)
    final = subprocess.run(_tune(config, url, "--trials", str(before + 2)), cwd=root,
                           env=_env(), capture_output=True, text=True, timeout=600)
    if final.returncode != 0:
        raise SystemExit(f"the resumed tune failed: {final.stderr[-2000:]}")
    now = _finished(url)
    counts["lost"] = sum(1 for key, value in seen.items() if now.get(key) != value)
    counts["completed_before_kills"] = len(seen)
    counts["finished_after"] = len(now)
    studies = _studies(url)
    origins: dict[tuple[str, int], int] = {}
    stale, recovered, defaults = 0, 0, {}
    for member, trials in studies.items():
        done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        for t in done:
            origin = RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
            key = (member, t.number if origin is None else origin)
            origins[key] = origins.get(key, 0) + 1
        defaults[member] = sum(1 for t in done if t.user_attrs.get("default"))
        for t in trials:
            if t.state == TrialState.FAIL:
                stale += 1
                recovered += any(
                    t.number in RetryHeartbeatStaleTrialCallback.retry_history(d) for d in done)
    counts["duplicated"] = sum(c - 1 for c in origins.values() if c > 1)
    counts["killed_trials"] = stale
    counts["killed_trials_retried_to_the_end"] = recovered
    counts["running_left"] = sum(t.state == TrialState.RUNNING
                                 for trials in studies.values() for t in trials)
    counts["as_configured_trials"] = defaults
    return counts


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")  # Optuna marks its retry helpers experimental
    print(json.dumps(cycles(int(sys.argv[1]), Path(sys.argv[2]))))
