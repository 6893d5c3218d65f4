"""Where studies live: Optuna's RDB storage (SQLite by default, any SQLAlchemy URL), and
one study per member, stamped with what it was made from so two configs never mix."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

FINGERPRINT = "ensemble_fingerprint"
# Set by a trial's objective once its heartbeat runs: a trial without it never started.
WORKER = "worker"
# A worker killed mid-trial stops beating; after GRACE_FACTOR heartbeats its trial is
# failed and retried with the same parameters by whichever worker looks next.
GRACE_FACTOR = 3
MAX_RETRY = 3
OPTUNA_MARKER = "version_info"  # a table every Optuna RDB schema has


def default_storage(name: str, models_dir: Path) -> str:
    """``sqlite:///models/<name>-tune.db``: one embedded file beside the saved models."""
    return f"sqlite:///{models_dir / f'{name}-tune.db'}"


def _sqlite_path(url: str) -> Path | None:
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    return Path(path) if path not in ("", ":memory:") else None


@contextlib.contextmanager
def setting_up(url: str) -> Iterator[None]:
    """Serialise setting a study up among this machine's processes on one SQLite file.

    Two processes creating the schema of a new file at once collide (a UNIQUE
    constraint on alembic's version); both enqueueing the configured trial would
    run it twice. A server database (PostgreSQL, MySQL) needs no lock here.
    """
    from engine.io.atomic import locked

    path = _sqlite_path(url) if isinstance(url, str) else None
    if path is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot open storage {url}: {exc.strerror} ({path.parent}); "
                          f"choose a writable path") from None
    with locked(path):
        yield


def open_storage(url: str, heartbeat: float = 10.0) -> Any:
    """An Optuna RDBStorage on ``url`` with heartbeats, so killed trials are retried.

    Raises
    ------
    ConfigError
        One line naming the URL and the fix, when the storage cannot be opened.
    """
    import optuna
    from optuna.storages import RDBStorage

    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"--storage {url!r} is not a database URL; use sqlite:///path/study.db "
                          f"or postgresql://user:password@host/database")
    engine_kwargs: dict[str, Any] = {}
    beats: dict[str, Any] = {"heartbeat_interval": max(int(heartbeat), 1),
                             "grace_period": _grace(heartbeat),
                             "heartbeat_stale_trial_callback": _retry()}
    if url.startswith("sqlite:"):
        # several processes write one file: wait for the lock instead of failing at once
        engine_kwargs["connect_args"] = {"timeout": 60}
        if _sqlite_path(url) is None:  # in memory: one process, and no thread sees it
            beats = {}
    try:
        _refuse_foreign_tables(url, engine_kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=engine_kwargs, **beats)
    except ConfigError:
        raise
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cannot open storage {safe_url(url)}: the database driver "
                          f"'{exc.name}' is not installed (pip install it, e.g. "
                          f"psycopg2-binary for postgresql://)") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy and Optuna raise many kinds here
        reason = " ".join(str(exc).split("\n")[0].split())[:200]
        raise ConfigError(f"cannot open storage {safe_url(url)}: {reason}; check the URL, that "
                          f"the database is reachable and that its driver is installed") from None


def _refuse_foreign_tables(url: str, engine_kwargs: dict[str, Any]) -> None:
    """Refuse a database that holds tables but no Optuna schema, before Optuna adds its own
    tables to it (a ``studies`` table of another program made every write fail)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if tables and OPTUNA_MARKER not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
        raise ConfigError(f"storage {safe_url(url)} holds another program's tables ({shown}), "
                          f"not Optuna's; pass --storage naming a new file or database")


def _grace(heartbeat: float) -> int:
    return max(int(GRACE_FACTOR * heartbeat), 2)


def _retry() -> Any:
    """Optuna's retry of a stale trial, minus the dead worker's name (so the retry, until
    its own objective starts, is known not to have started)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    class Retry(RetryHeartbeatStaleTrialCallback):
        def __call__(self, study: Any, trial: Any) -> None:
            trial = copy.copy(trial)
            trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != WORKER}
            super().__call__(study, trial)

    return Retry(MAX_RETRY)


def fail_orphans(study: Any) -> int:
    """Fail and retry trials whose worker died between taking them and starting them.

    Optuna fails a killed worker's trial once its heartbeat is stale, but a
    worker killed after ``ask()`` and before its first heartbeat leaves a
    trial RUNNING forever (a trial taken from the queue, like the configured
    one or a retry, would be lost). Such a trial never set :data:`WORKER`.
    Returns how many were failed here.
    """
    import datetime

    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage
    interval = storage.get_heartbeat_interval() if hasattr(
        storage, "get_heartbeat_interval") else None
    if not interval:
        return 0
    grace = _grace(interval)
    now = datetime.datetime.now()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if WORKER in trial.user_attrs or trial.datetime_start is None or \
                (now - trial.datetime_start).total_seconds() <= grace:
            continue
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                storage.get_heartbeat_stale_trial_callback()(study, storage.get_trial(
                    trial._trial_id))
                failed += 1
        except UpdateFinishedTrialError:  # another worker failed it first
            pass
    return failed


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = f"{credentials.split(':')[0]}:***@{host}" if ":" in credentials else rest
    return scheme + sep + rest


def fingerprint(parts: dict[str, Any]) -> str:
    """sha256 of what a study's trials depend on (as JSON, reprs for anything else)."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def open_study(storage: Any, name: str, stamp: str, direction: str, sampler: Any,
               pruner: Any, storage_url: str) -> Any:
    """Create or load study ``name``; refuse one made from another config (``stamp`` differs)."""
    import optuna

    try:
        study = optuna.create_study(study_name=name, storage=storage, direction=direction,
                                    sampler=sampler, pruner=pruner, load_if_exists=True)
    except optuna.exceptions.StorageInternalError:  # tables shaped like Optuna's, but not
        raise ConfigError(f"storage {safe_url(storage_url)} has tables Optuna cannot use (made "
                          f"by another program or version?); pass --storage naming a new file "
                          f"or database") from None
    found = study.user_attrs.get(FINGERPRINT)
    if found is None:
        study.set_user_attr(FINGERPRINT, stamp)
    elif found != stamp:
        raise ConfigError(f"study '{name}' in {safe_url(storage_url)} was made from another config "
                          f"(its member, search space, folds, metric or data differ); refusing "
                          f"to mix them: pass --study NEW-NAME or another --storage")
    return study
