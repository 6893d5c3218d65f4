"""Save and restore an estimator's parameters and fitted attributes without pickle.

Parameters go to ``params.json`` (estimator-valued ones to ``params/<name>.skops``);
fitted attributes (names ending in ``_``) go to ``state.json``, ``state.npz``
(numeric arrays, loaded with ``allow_pickle=False``) or ``fitted/<name>.skops``.
A plugin built from scikit-learn parts needs no save/load code of its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from engine.constraints import validate_params
from engine.errors import ConfigError, ModelDirectoryError
from engine.io.files import load_npz
from engine.io.schema import PARAMS_SCHEMA, STATE_SCHEMA, read_checked
from engine.io.skops import dump_estimator, load_estimator
from engine.io.trust import mark_stored

PARAMS_JSON, STATE_JSON, STATE_NPZ = "params.json", "state.json", "state.npz"


def _is_estimator(value: Any) -> bool:
    return hasattr(value, "get_params") and not isinstance(value, type)


def _to_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("dict keys must be strings")
        return {k: _to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON")


def describe(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe config for a manifest (values that are not JSON shown by their repr)."""
    described = {}
    for key, value in params.items():
        try:
            described[key] = json.loads(json.dumps(_to_json(value)))
        except TypeError:
            described[key] = repr(value)
    return described


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def fitted_attributes(obj: Any) -> dict[str, Any]:
    """Public attributes ending in ``_``: what ``fit`` learnt."""
    return {k: v for k, v in vars(obj).items() if k.endswith("_") and not k.startswith("_")}


def save_state(obj: Any, directory: str | Path, exclude: tuple[str, ...] = ()) -> None:
    """Write ``obj``'s params and fitted attributes (but ``exclude``) into ``directory``."""
    directory = Path(directory)
    fitted = {k: v for k, v in fitted_attributes(obj).items() if k not in exclude}
    for group, values, json_name in (("params", obj.get_params(deep=False), PARAMS_JSON),
                                     ("fitted", fitted, STATE_JSON)):
        plain: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        for key, value in values.items():
            if _is_estimator(value):
                (directory / group).mkdir(exist_ok=True)
                dump_estimator(value, directory / group / f"{key}.skops")
            elif isinstance(value, np.ndarray) and value.dtype != object and group == "fitted":
                arrays[key] = value
            else:
                try:
                    plain[key] = _to_json(value)
                except TypeError as exc:
                    raise TypeError(f"{type(obj).__name__}.{key} cannot be saved ({exc}); "
                                    f"override save() and load()") from exc
        (directory / json_name).write_text(json.dumps(plain, indent=2, sort_keys=True))
        if arrays:
            np.savez(directory / STATE_NPZ, **arrays)


# Names that become constructor keywords and attributes: never dunders like __dict__.
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
FITTED_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}_")


def _checked_name(name: str, pattern: re.Pattern[str], where: Path) -> str:
    if not pattern.fullmatch(name):
        raise ModelDirectoryError(f"'{name}' in {where.name} is not a parameter or fitted "
                                  f"attribute name; refusing to load")
    return name


def load_state(cls: type, directory: str | Path) -> Any:
    """Rebuild an object written by :func:`save_state`.

    Both JSON files are validated against a schema first, and every string in
    them is kept as a :class:`engine.io.trust.StoredString`, so nothing they
    name is imported or opened later, even by a refit.
    """
    directory = Path(directory)
    params = mark_stored(_from_json(read_checked(directory / PARAMS_JSON, PARAMS_SCHEMA)))
    fitted = mark_stored(_from_json(read_checked(directory / STATE_JSON, STATE_SCHEMA)))
    for group, target, pattern in (("params", params, PARAM_NAME),
                                   ("fitted", fitted, FITTED_NAME)):
        for path in sorted((directory / group).glob("*.skops")):
            target[_checked_name(path.stem, pattern, path)] = load_estimator(path)
    if (directory / STATE_NPZ).exists():
        arrays = load_npz(directory / STATE_NPZ)
        fitted.update({_checked_name(k, FITTED_NAME, directory / STATE_NPZ): v
                       for k, v in arrays.items()})
    obj = cls(**params)
    try:  # the checks fit makes: a changed params.json cannot pass what fit would refuse
        validate_params(obj, getattr(cls, "_constraints", {}))
    except ConfigError as exc:
        raise ModelDirectoryError(f"{directory / PARAMS_JSON}: {exc}; refusing to load") \
            from None
    for key, value in fitted.items():
        setattr(obj, key, value)
    return obj
