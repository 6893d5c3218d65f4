"""What ``tune`` found: the result object, the table of trials, and the tuned config
written beside the original."""

from __future__ import annotations

import sys
import time as clock
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import load_config
from engine.ensemble import Ensemble, build_member
from engine.errors import ConfigError
from engine.search_space import decode
from engine.tuning.combiner import COMBINER
from engine.tuning.storage import WORKER


@dataclass


class TuneResult:
    """What :func:`tune` found; unpacks as ``studies, ensemble = tune(...)``.

    Attributes
    ----------
    studies : dict of str to optuna.Study
        One per tuned member, and ``"combiner"`` when the combiner was tuned.
    ensemble : Ensemble
        Unfitted, with every member's best parameters (and the best combiner).
    params : dict of str to dict
        The best parameters of each tuned member.
    default_scores, best_scores : dict of str to float
        Each member's out-of-fold score as configured and with its best parameters.
    metric : str
    storage : str
        The storage URL the studies live in (without its password).
    config_path : Path or None
        The tuned config written beside the original (tuning from a config).
    skipped : list of str
        Members left as configured: their plugin declares no search space.
    """

    studies: dict[str, Any]
    ensemble: Ensemble
    params: dict[str, dict[str, Any]]
    default_scores: dict[str, float]
    best_scores: dict[str, float]
    metric: str
    storage: str
    config_path: Path | None = None
    skipped: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        yield self.studies
        yield self.ensemble

    def trials(self) -> Any:
        """Every finished or failed trial: member, number, state, params, score, seconds, worker."""
        import pandas as pd

        rows = []
        for member, study in self.studies.items():
            for trial in study.get_trials(deepcopy=False):
                seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
                    if trial.datetime_complete and trial.datetime_start else None
                rows.append({"member": member, "trial": trial.number,
                             "state": trial.state.name.lower(),
                             "params": ", ".join(f"{k}={decode(v)}"
                                                 for k, v in trial.params.items()),
                             "score": trial.value if trial.value is not None else
                             _last(trial.intermediate_values), "seconds": seconds,
                             "default": bool(trial.user_attrs.get("default")),
                             "worker": trial.user_attrs.get(WORKER, "")})
        return pd.DataFrame(rows)


def _last(values: Mapping[int, float]) -> float | None:
    return values[max(values)] if values else None


def write_tuned_config(config_path: Path, output: str | Path | None, result: TuneResult
                       ) -> Path:
    """Write the config with the best parameters beside the original, atomically."""
    from engine.config import read_toml
    from engine.io.atomic import atomic_write
    from engine.tuning.toml_out import dumps

    target = Path(output) if output else config_path.with_name(
        f"{config_path.stem}.tuned.toml")
    if target.resolve() == config_path.resolve():
        raise ConfigError(f"the tuned config would overwrite {config_path}; give another -o")
    raw = read_toml(config_path)
    raw["name"] = f"{raw.get('name', config_path.stem)}-tuned"
    if target.parent.resolve() != config_path.parent.resolve():
        # elsewhere, a path relative to the original's folder would point nowhere
        data = load_config(config_path).data
        for key in ("train", "test", "sample_submission"):
            if getattr(data, key) is not None and key in raw.get("data", {}):
                raw["data"][key] = str(Path(getattr(data, key)).resolve())
    for member, params in result.params.items():
        table = raw["members"][member]
        defaults = build_member(table["plugin"]).get_params(deep=False)
        for key, value in params.items():
            if value is None:
                if defaults.get(key) is not None:
                    raise ConfigError(f"cannot write {member}.{key} = None to TOML; its "
                                      f"default is {defaults[key]!r}")
                table.pop(key, None)
            else:
                table[key] = list(value) if isinstance(value, tuple) else value
    if COMBINER in result.studies:
        spec = result.ensemble.combiner
        raw.setdefault("ensemble", {})["combiner"] = spec if isinstance(spec, str) else \
            {"name": spec[0], **{k: list(v) if isinstance(v, tuple) else v
                                 for k, v in spec[1].items()}}
    lines = [f"Tuned by `ensemble tune` from {config_path.name} on "
             f"{clock.strftime('%Y-%m-%d %H:%M')}: out-of-fold {result.metric}, "
             f"studies in {result.storage}"]
    lines += [f"  {m}: {_fmt(result.default_scores.get(m))} as configured -> "
              f"{_fmt(result.best_scores[m])} tuned" for m in result.params]
    with atomic_write(target, encoding="utf-8") as handle:
        handle.write(dumps(raw, "\n".join(lines)))
    return target


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def print_trials(result: TuneResult, console: Any = None) -> None:
    """The trials as a table (member, trial, state, params, score, seconds), then the best."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 160)
    frame = result.trials()
    table = Table(title=f"trials ({result.metric}, out of fold)")
    for column in ("member", "trial", "state", "params", "score", "seconds", "worker"):
        table.add_column(column, justify="right" if column in ("trial", "score", "seconds")
                         else "left")
    for row in frame.itertuples():
        table.add_row(row.member, str(row.trial), row.state + (" (as configured)"
                                                                if row.default else ""),
                      row.params, _fmt(row.score if row.score == row.score else None),
                      "" if row.seconds != row.seconds or row.seconds is None
                      else f"{row.seconds:.1f}", row.worker)
    console.print(table)
