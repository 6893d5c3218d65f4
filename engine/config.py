"""Ensemble configs in TOML: ``[data]``, ``[ensemble]``, ``[members.<name>]``."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.ensemble import Ensemble
from engine.errors import ConfigError, did_you_mean
from engine.io.files import check_bounds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA_KEYS = {"train": None, "test": None, "sample_submission": None, "text": "text",
             "label": "target", "id": "id", "fill_na": None, "validation_split": 0.1,
             "split_seed": 42, "class_names": None}
ENSEMBLE_KEYS = {"combiner", "cv", "random_state", "n_jobs", "threshold",
                 "drop_label_issues"}
SECTIONS = {"name", "data", "ensemble", "members", "reference", "tune"}
# [tune]: `ensemble tune` settings (the command line overrides them) and [tune.space.<member>].
TUNE_KEYS = {"time": None, "trials": None, "metric": "f1", "members": None, "combiner": False,
             "storage": None, "study": None, "sampler": "tpe", "pruner": "median", "seed": None,
             "space": None}
# Keys of a [members.<name>] table that are the engine's, not the plugin's parameters.
MEMBER_KEYS = ("plugin", "text", "cv", "refit")
# Files that hold data, not a config: named in a one-line hint instead of a TOML parse error.
DATA_SUFFIXES = {".csv", ".tsv", ".parquet", ".jsonl", ".xlsx"}


@dataclass
class DataConfig:
    """Where the data is and which columns mean what."""

    train: Path | None = None
    test: Path | None = None
    sample_submission: Path | None = None
    text: str | list[str] = "text"
    label: str = "target"
    id: str | None = "id"
    fill_na: str | None = None
    validation_split: float = 0.1
    split_seed: int = 42
    class_names: list[str] | None = None  # names for integer labels in reports and /model


@dataclass
class Config:
    """A parsed ensemble config; :meth:`build_ensemble` turns it into an unfitted Ensemble."""

    name: str
    data: DataConfig
    members: dict[str, Any]
    ensemble: dict[str, Any] = field(default_factory=dict)
    reference: list[dict[str, Any]] = field(default_factory=list)
    tune: dict[str, Any] = field(default_factory=dict)

    member_text: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # the TOML text, recorded in the model directory's manifest

    def build_ensemble(self, **overrides: Any) -> Ensemble:
        """The unfitted Ensemble; ``overrides`` replace [ensemble] settings (verbose, n_jobs)."""
        ensemble = Ensemble(self.members, text=self.data.text, fill_na=self.data.fill_na,
                            member_text=self.member_text or None,
                            class_names=self.data.class_names,
                            **{**self.ensemble, **overrides})
        ensemble._checked_members()  # unknown plugins and bad params fail before any data is read
        return ensemble


def _check_keys(table: dict[str, Any], allowed: set[str] | dict[str, Any], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key '{key}' in {where}{did_you_mean(key, allowed)}; "
                              f"allowed: {', '.join(sorted(allowed))}")


def _resolve(value: Any, base: Path, key: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"[data] {key} must be a path string, got {value!r}")
    path = Path(value).expanduser()
    # Paths work relative to the working directory (as in the README) or to the config file.
    if path.is_absolute() or path.exists():
        return path
    return base / path


def _lists_to_tuples(params: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def read_toml(path: str | Path) -> dict[str, Any]:
    """The raw tables of a TOML file, or a one-line ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.suffix.lower() in DATA_SUFFIXES:
        raise ConfigError(data_file_hint(path))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{path.name} nests arrays or tables deeper than Python can parse; "
                          f"a config needs a few levels at most") from None
    except ValueError as exc:  # invalid TOML, not UTF-8, an integer past the digit limit
        if _looks_like_csv(path):
            raise ConfigError(data_file_hint(path)) from None
        first = (str(exc).splitlines() or [""])[0].split("; use sys.")[0][:200]
        raise ConfigError(f"{path.name} is not valid TOML: {first}") from None
    check_bounds(raw, path.name, ConfigError)  # what later walks it recursively never overflows
    return raw


def data_file_hint(path: Path) -> str:
    """The one line for a data file given where a TOML config is expected."""
    return (f"{path.name} is a data file, not a TOML config: fit it directly with "
            f"`ensemble fit {path} --label COLUMN`, or write a config to edit with "
            f"`ensemble init {path} --label COLUMN > my.toml`")


def _looks_like_csv(path: Path) -> bool:
    """A first line of comma- or tab-separated names, as a CSV header (not TOML's key = v)."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as f:
            first = f.readline(4096)
    except OSError:
        return False
    return "=" not in first and ("," in first or "\t" in first)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML ensemble config.

    Examples
    --------
    >>> config = load_config("examples/disaster_tweets.toml")  # doctest: +SKIP
    >>> config.build_ensemble().fit(texts, labels)              # doctest: +SKIP
    """
    path = Path(path)
    return config_from_tables(read_toml(path), path.parent, path.stem, path.name,
                              source=path.read_text(encoding="utf-8"))


def config_from_tables(raw: dict[str, Any], base: Path, default_name: str,
                       where: str = "the config", source: str | None = None) -> Config:
    """A validated :class:`Config` from parsed TOML tables; relative paths are tried in the
    working directory, then under ``base``. ``source`` is the TOML text, kept for the manifest.
    """
    _check_keys(raw, SECTIONS, where)

    data_raw = raw.get("data", {})
    _check_keys(data_raw, DATA_KEYS, "[data]")
    values = {**DATA_KEYS, **data_raw}
    for key in ("train", "test", "sample_submission"):
        values[key] = _resolve(values[key], Path(base), key)
    if not isinstance(values["text"], (str, list)) or not values["text"]:
        raise ConfigError("[data] text must be a column name or a list of column names")
    data = DataConfig(**values)

    ensemble = dict(raw.get("ensemble", {}))
    _check_keys(ensemble, ENSEMBLE_KEYS, "[ensemble]")
    combiner = ensemble.get("combiner")
    if isinstance(combiner, dict):
        if "name" not in combiner:
            raise ConfigError("[ensemble.combiner] needs name = \"mean\" | \"vote\" | "
                              "\"stacking\" | ...")
        params = _lists_to_tuples({k: v for k, v in combiner.items() if k != "name"})
        ensemble["combiner"] = (combiner["name"], params)

    members_raw = raw.get("members")
    if not isinstance(members_raw, dict) or not members_raw:
        raise ConfigError(f"{where} has no members; add a [members.<name>] table with "
                          f"plugin = \"tfidf-nb\"")
    members, member_text, member_cv, refit = {}, {}, {}, {}
    for name, table in members_raw.items():
        if not isinstance(table, dict) or "plugin" not in table:
            raise ConfigError(f"[members.{name}] needs plugin = \"<registered plugin name>\"")
        params = {k: v for k, v in table.items() if k not in MEMBER_KEYS}
        if "cv" in table:  # fewer folds for an expensive member
            member_cv[name] = table["cv"]
        if "refit" in table:  # false: the fold models' average predicts
            refit[name] = table["refit"]
        members[name] = (table["plugin"], _lists_to_tuples(params))
        if "text" in table:  # the columns this member reads, instead of [data] text
            if not isinstance(table["text"], (str, list)) or not table["text"]:
                raise ConfigError(f"[members.{name}] text must be a column name or a list "
                                  f"of column names")
            member_text[name] = table["text"]

    reference = raw.get("reference", [])
    if not isinstance(reference, list) or not all(isinstance(r, dict) and "name" in r
                                                  for r in reference):
        raise ConfigError("[[reference]] entries need a name and score values")
    if member_cv:
        ensemble["member_cv"] = member_cv
    if refit:
        ensemble["refit"] = refit
    tune = raw.get("tune", {})
    if not isinstance(tune, dict):
        raise ConfigError("[tune] must be a table, e.g. [tune] time = \"10m\"")
    _check_keys(tune, TUNE_KEYS, "[tune]")
    config = Config(name=str(raw.get("name", default_name)), data=data, members=members,
                    ensemble=ensemble, reference=reference, member_text=member_text,
                    tune=tune, source=source)
    config.build_ensemble()
    return config
