"""JSON schemas for the manifest and the state files, checked before anything is built.

A model directory is hostile until checked: every JSON file it holds is
parsed within bounds (:func:`engine.io.files.read_json`) and validated here
with ``jsonschema`` (types, string lengths, counts, number ranges, the names
that become Python attributes), so a wrong type in a manifest field is one
line naming the field, never an IndexError or a 29 TiB allocation later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import ModelDirectoryError
from engine.io.files import MAX_JSON_BYTES, read_json
from engine.text_safety import clean

MAX_COUNT = 1 << 16  # members, classes, settings, hashes ...
NAME = {"type": "string", "pattern": r"^[^\x00-\x1f\x7f/\\]{1,128}$"}
# A package name as PyPI spells it (PEP 508), so an error may print it safely.
PACKAGE = {"type": "string", "pattern": r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$"}
VERSION = {"type": "string", "pattern": r"^[A-Za-z0-9.+!_-]{1,64}$"}
# "module.QualName" of a class registered with engine.register_plugin: shown, never imported.
# Module names are whatever the file was called ("my-notebook", "__main__"): a narrow charset.
REGISTERED = {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.<>-]{0,255}$"}
RELATIVE_PATH = {"type": "string", "pattern": r"^[^\x00-\x1f\x7f]{1,1024}$"}
SEED = {"type": ["integer", "null"], "minimum": 0, "maximum": 2**32 - 1}

# Any JSON: its size, nesting and lengths are bounded when the file is parsed
# (engine.io.files.check_bounds), far faster than a recursive schema on 10^6 values.
JSON_VALUE: dict[str, Any] = {}


def schema(spec: dict[str, Any]) -> dict[str, Any]:
    """A draft 2020-12 schema from ``spec``.

    ``{"$ref": "#/$defs/json"}`` in it means any JSON value (the parser has
    bounded its strings, lists, objects and nesting).
    """
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": {"json": JSON_VALUE}, **spec}


CONFIG = {"type": "object", "maxProperties": 1024,
          "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"},
          "additionalProperties": {"$ref": "#/$defs/json"}}
TEXT_COLUMNS = {"anyOf": [{"type": "string", "maxLength": 1024},
                          {"type": "array", "minItems": 1, "maxItems": 256,
                           "items": {"type": "string", "maxLength": 1024}}]}

MANIFEST_SCHEMA = schema({
    "type": "object",
    "required": ["format_version", "members", "combiner", "classes", "files", "ensemble",
                 "training", "scores"],
    "properties": {
        "format_version": {"type": "integer", "minimum": 1},
        "engine_version": VERSION,
        "created_at": {"type": "string", "maxLength": 64},
        "classes": {
            "type": "object", "required": ["dtype", "values"], "additionalProperties": False,
            "properties": {
                "dtype": {"enum": ["b", "i", "u", "f", "O"]},
                # distinct and of one type: engine.io.model_dir checks it in linear time
                # (jsonschema's uniqueItems compares mixed types pairwise: 20,000 took minutes)
                "values": {"type": "array", "minItems": 2, "maxItems": MAX_COUNT,
                           "items": {"anyOf": [{"type": ["boolean", "number"]},
                                               {"type": "string", "maxLength": 1024}]}},
            },
        },
        "ensemble": {
            "type": "object", "maxProperties": 256,
            "properties": {
                "cv": {"type": "integer", "minimum": 2, "maximum": 1000},
                "random_state": SEED,
                "text": TEXT_COLUMNS,
                "member_text": {"type": ["object", "null"], "maxProperties": MAX_COUNT,
                                "additionalProperties": TEXT_COLUMNS},
                "member_cv": {"type": ["object", "null"], "maxProperties": MAX_COUNT,
                              "additionalProperties": {"type": "integer", "minimum": 2,
                                                       "maximum": 1000}},
                "refit": {"anyOf": [{"type": "boolean"},
                                    {"type": "object", "maxProperties": MAX_COUNT,
                                     "additionalProperties": {"type": "boolean"}}]},
                "n_jobs": {"type": ["integer", "null"], "minimum": -1024, "maximum": 1024},
                "threshold": {"anyOf": [{"type": "null"},
                                        {"type": "number", "minimum": 0, "maximum": 1},
                                        {"type": "string", "maxLength": 64}]},
                "fill_na": {"type": ["string", "null"], "maxLength": 1024},
                "verbose": {"type": ["boolean", "integer"], "minimum": 0, "maximum": 10},
                "backend": {"type": ["string", "null"], "maxLength": 64},
                "scheduler": {"type": ["string", "null"], "maxLength": 1024},
                "class_names": {"anyOf": [
                    {"type": "null"},
                    {"type": "array", "maxItems": MAX_COUNT,
                     "items": {"type": "string", "maxLength": 1024}},
                    {"type": "object", "maxProperties": MAX_COUNT,
                     "additionalProperties": {"type": "string", "maxLength": 1024}}]},
            },
            "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"},
            "additionalProperties": {"$ref": "#/$defs/json"},
        },
        "members": {
            "type": "array", "minItems": 1, "maxItems": MAX_COUNT,
            "items": {
                "type": "object", "required": ["name", "plugin", "directory"],
                "properties": {
                    "name": NAME, "plugin": NAME, "package": PACKAGE, "version": VERSION,
                    "registered": REGISTERED, "config": CONFIG, "directory": RELATIVE_PATH,
                    "bytes": {"type": "integer", "minimum": 0},
                    "fit_seconds": {"type": "number"},
                },
                "additionalProperties": {"$ref": "#/$defs/json"},
            },
        },
        "combiner": {
            "type": "object", "required": ["name", "directory"],
            "properties": {"name": NAME, "package": PACKAGE, "version": VERSION,
                           "registered": REGISTERED, "config": CONFIG,
                           "directory": RELATIVE_PATH},
            "additionalProperties": {"$ref": "#/$defs/json"},
        },
        "training": {"type": "object", "maxProperties": 256,
                     "additionalProperties": {"$ref": "#/$defs/json"}},
        "scores": {"type": ["object", "null"], "maxProperties": MAX_COUNT,
                   "additionalProperties": {
                       "type": "object", "maxProperties": 256,
                       "additionalProperties": {"type": ["number", "null"]}}},
        "threshold": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        # A distilled student's teacher, the unlabeled data and the settings (engine.distill).
        "distilled_from": {"type": "object", "maxProperties": 64,
                           "additionalProperties": {"$ref": "#/$defs/json"}},
        "files": {"type": "object", "maxProperties": 1 << 20,
                  "propertyNames": RELATIVE_PATH,
                  "additionalProperties": {"type": "string", "pattern": r"^[0-9a-f]{64}$"}},
        # Column settings the CLI reads new files with.
        "data": {"type": "object", "maxProperties": 256,
                 "properties": {"text": {"anyOf": [{"type": "null"}, TEXT_COLUMNS]},
                                "id": {"type": ["string", "null"], "maxLength": 1024},
                                "label": {"type": ["string", "null"], "maxLength": 1024},
                                "fill_na": {"type": ["string", "null"], "maxLength": 1024}},
                 "additionalProperties": {"$ref": "#/$defs/json"}},
    },
    "additionalProperties": {"$ref": "#/$defs/json"},
})

# params.json: constructor keywords; state.json: fitted attributes (set with setattr, so
# their names must look like fitted attributes and can never be __class__ or __dict__).
PARAMS_SCHEMA = schema(CONFIG)
STATE_SCHEMA = schema({**CONFIG, "propertyNames": {"pattern": r"^[A-Za-z][A-Za-z0-9_]{0,127}_$"},
                       "properties": {"n_classes_": {"type": "integer", "minimum": 2,
                                                     "maximum": MAX_COUNT}}})
ANY_JSON_SCHEMA = schema({"$ref": "#/$defs/json"})
# signature.json: an Ed25519 signature (64 bytes, base64) and its key's SHA256 fingerprint.
SIGNATURE_SCHEMA = schema({
    "type": "object", "required": ["format", "algorithm", "key", "signature"],
    "additionalProperties": False,
    "properties": {"format": {"const": 1}, "algorithm": {"const": "ed25519"},
                   "key": {"type": "string", "pattern": r"^SHA256:[A-Za-z0-9+/]{43}$"},
                   "signature": {"type": "string", "pattern": r"^[A-Za-z0-9+/]{86}==$"}},
})


_VALIDATORS: dict[int, Any] = {}


def _validator(spec: dict[str, Any]) -> Any:
    # Schemas are module constants: one compiled validator each, keyed by identity.
    if id(spec) not in _VALIDATORS:
        import jsonschema

        _VALIDATORS[id(spec)] = (spec, jsonschema.Draft202012Validator(spec))
    return _VALIDATORS[id(spec)][1]


def _shown(instance: Any) -> str:
    """The invalid value, as an error may echo it: a string up to its first space and at
    most 32 characters (a "package" of ``x --index-url https://...`` is a lure to paste
    into a shell), an array or object by its size."""
    if isinstance(instance, str):
        words = instance.split()
        head = clean(words[0] if words else "")[:32]
        return f"'{head}'" if head == instance else \
            f"'{head}...' (a string of {len(instance):,} characters, shown cut)"
    if isinstance(instance, (list, dict)):
        kind = "an array" if isinstance(instance, list) else "an object"
        return f"{kind} of {len(instance):,} items"
    text = repr(instance)
    return text if len(text) <= 32 else text[:32] + "..."


def validate(value: Any, against: dict[str, Any], where: str) -> Any:
    """Check ``value`` against ``schema``; the first problem becomes one line naming the field.

    Parameters
    ----------
    value : Any
        Parsed JSON.
    against : dict
        A JSON Schema (draft 2020-12), e.g. :data:`MANIFEST_SCHEMA`.
    where : str
        The file it came from, for the message.

    Returns
    -------
    Any
        ``value`` itself, valid.

    Raises
    ------
    ModelDirectoryError
        Naming the field and what is wrong with it.

    Examples
    --------
    >>> validate({"alpha": 1.0}, PARAMS_SCHEMA, "params.json")
    {'alpha': 1.0}
    >>> validate({"__class__": 1}, STATE_SCHEMA, "state.json")
    Traceback (most recent call last):
    ...
    engine.errors.ModelDirectoryError: state.json is not valid at (top level): '__class__' \
does not match '^[A-Za-z][A-Za-z0-9_]{0,127}_$'; refusing to load
    """
    validator = _validator(against)
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: len(e.path))), None)
    if error is not None:
        field = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message.replace(repr(error.instance), _shown(error.instance), 1)
        message = message if len(message) <= 200 else message[:200] + "..."
        raise ModelDirectoryError(f"{where} is not valid at {field}: {message}; "
                                  f"refusing to load")
    return value


def read_checked(path: str | Path, against: dict[str, Any] = ANY_JSON_SCHEMA,
                 limit: int = MAX_JSON_BYTES) -> Any:
    """Read the JSON file ``path`` within bounds and validate it against ``against``."""
    path = Path(path)
    return validate(read_json(path, limit), against, path.name)
