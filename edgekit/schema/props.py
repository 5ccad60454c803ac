"""Validate construct properties against the JSON Schema exported from CUE, then structure
them into attrs classes with cattrs.

One Draft 2020-12 validator is compiled per definition, on first use, and reused.
Every error becomes one located line:
``[prod/edge-1] VpsNode: 70000 is out of range 1-65535 @ $.port``.
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from edgekit.core.errors import ConstructError, EdgekitError, Problem
from edgekit.core.files import exists, generation, read_bytes
from edgekit.core.jsonkind import value_kind
from edgekit.schema.fastcheck import Predicate, compile_schema

if TYPE_CHECKING:  # jsonschema is imported only to describe invalid properties
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

PACKAGE_SCHEMA_DIR = Path(__file__).resolve().parent / "cue"


_project_schemas: Path | None = None


def schema_dir() -> Path:
    """Where the CUE-exported JSON Schemas live: ``EDGEKIT_SCHEMA_DIR`` when set (tests
    work on a copy), else the project's own export when edgekit is installed apart from
    the project (`use_project_schemas`), else edgekit's package data."""
    override = os.environ.get("EDGEKIT_SCHEMA_DIR")
    return Path(override) if override else _project_schemas or PACKAGE_SCHEMA_DIR


def use_project_schemas(folder: Path | None) -> None:
    """Validate properties against the schemas a project exported from its own cue/ (set
    by `edgekit.cue.export` when edgekit runs from a wheel); None: the package's."""
    global _project_schemas
    _project_schemas = folder  # the caches below are keyed by the folder

T = TypeVar("T")


@cache
def _cattrs_converter() -> Any:
    """cattrs, for what the plain structuring below refuses: its messages name the field."""
    import cattrs

    return cattrs.Converter(forbid_extra_keys=True)


class PropsError(ConstructError):
    """A construct's properties do not match their CUE definition; every problem listed."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"invalid properties:\n{lines}")


class SchemaMissingError(EdgekitError):
    """A CUE definition has no exported JSON Schema: a message for the user (run the
    export), never a traceback (it was a KeyError from every command building the app)."""


def schema_for(definition: str) -> dict[str, Any]:
    return _schema_for(definition, schema_dir(), generation())


@cache
def _schema_for(definition: str, folder: Path, _generation: int) -> dict[str, Any]:
    path = folder / f"{definition}.json"
    if not exists(path):
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise SchemaMissingError(
            f"no exported JSON Schema for #{definition} in {folder} (exported there: "
            f"{', '.join(known) or 'none'}); run `edgekit cue export`")
    schema: dict[str, Any] = json.loads(read_bytes(path))
    return schema


def validator_for(definition: str) -> Draft202012Validator:
    """Compiled once per definition: compiling per call would dominate synth time. The
    schemas themselves are checked against the metaschema by the tests, not here."""
    return _validator_for(definition, schema_dir(), generation())


@cache
def _validator_for(definition: str, folder: Path, _generation: int) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema_for(definition, folder, _generation))


def predicate_for(definition: str) -> Predicate | None:
    """The fast valid-or-not check of ``#<definition>`` (None: always use jsonschema)."""
    return _predicate_for(definition, schema_dir(), generation())


@cache
def _predicate_for(definition: str, folder: Path, _generation: int) -> Predicate | None:
    return compile_schema(_schema_for(definition, folder, _generation))


def problems_in(definition: str, data: Any, path: str) -> list[Problem]:
    return _problems_in(definition, schema_dir(), generation(), data, path)


def _problems_in(definition: str, folder: Path, generation: int, data: Any, path: str
                 ) -> list[Problem]:
    valid = _predicate_for(definition, folder, generation)
    if valid is not None and valid(data):
        return []  # the common case; jsonschema describes what is wrong otherwise
    errors = sorted(_validator_for(definition, folder, generation).iter_errors(data),
                    key=lambda e: (list(map(str, e.absolute_path)), e.validator or ""))
    return [Problem(path=path, address=f"#{definition}", message=describe(e),
                    pointer=pointer_of(e.absolute_path)) for e in _leaves(errors)]


def structure(definition: str, cls: type[T], data: Mapping[str, Any], path: str) -> T:
    """Validate `data` against ``#<definition>`` and build `cls` from it; raise `PropsError`."""
    problems = _problems_in(definition, schema_dir(), generation(),
                            data if type(data) is dict else dict(data), path)
    if problems:
        raise PropsError(problems)
    try:
        return _build(cls, data)  # schema-valid data: the plain path (no cattrs at all)
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    import cattrs

    try:
        result: T = _cattrs_converter().structure(dict(data), cls)
        return result
    except (cattrs.BaseValidationError, ValueError, TypeError) as err:
        lines = cattrs.transform_error(err) if isinstance(err, cattrs.BaseValidationError) \
            else [str(err)]
        raise PropsError(Problem(path=path, address=f"#{definition}", message=line)
                         for line in lines) from err


def _build(cls: type[T], data: Mapping[str, Any]) -> T:
    """An attrs instance from data the JSON Schema accepted: nested attrs classes, tuples
    from lists, dicts and optionals by the field types; anything unexpected raises (then
    cattrs runs and says what is wrong)."""
    fields = _fields_of(typing.cast(Any, cls))
    if not fields.keys() >= data.keys():
        raise TypeError(f"unknown fields {sorted(set(data) - set(fields))}")
    return cls(**{name: convert(value) if convert else value
                  for name, value in data.items() for convert in (fields[name],)})


Convert = Callable[[Any], Any] | None


@cache
def _fields_of(cls: type) -> dict[str, Convert]:
    hints = typing.get_type_hints(cls)
    return {field.name: _converter_for(hints[field.name]) for field in attrs.fields(cls)}


def _converter_for(annotation: Any) -> Convert:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if attrs.has(annotation):
        return lambda value: _build(annotation, value)
    if origin is tuple:
        item = _converter_for(args[0])
        return (lambda value: tuple(map(item, value))) if item else tuple
    if origin is dict:
        inner = _converter_for(args[1])
        return (lambda value: {k: inner(v) for k, v in value.items()}) if inner else dict
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) != 1:
            return None
        option = _converter_for(options[0])
        return (lambda value: None if value is None else option(value)) if option else None
    return None  # str, int, bool, Literal[...], Any: the schema checked them


def pointer_of(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _leaves(errors: list[ValidationError]) -> list[ValidationError]:
    """One error per JSON pointer and kind; for anyOf/oneOf the best matching cause.

    CUE exports ``int & >=1`` as ``allOf: [{type: number}, {type: integer, ...}]``, so a
    string there fails two type checks; the later, more specific one is kept.
    """
    from jsonschema.exceptions import best_match

    chosen: dict[tuple[str, str], ValidationError] = {}
    for error in errors:
        if error.context and error.validator in ("anyOf", "oneOf"):
            error = best_match(error.context) or error
        key = (pointer_of(error.absolute_path), str(error.validator))
        chosen[key] = error
    return list(chosen.values())


def describe(error: ValidationError) -> str:
    """A message that says what was expected and what was given."""
    v, value, expected = error.validator, error.instance, error.validator_value
    if v == "required":
        missing = [m for m in expected if isinstance(error.instance, dict)
                   and m not in error.instance]
        return f"missing required property {', '.join(repr(m) for m in missing)}"
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        listed = ", ".join(repr(e) for e in extra)
        return f"unknown property {listed} (allowed: {', '.join(allowed) or 'none'})"
    if v == "type":
        return f"expected {expected}, got {value_kind(value)} {json.dumps(value)}"
    if v in ("minimum", "maximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        if low is not None and high is not None:
            return f"{json.dumps(value)} is out of range {low}-{high}"
        side = "below the minimum" if v == "minimum" else "above the maximum"
        return f"{json.dumps(value)} is {side} {expected}"
    if v == "enum":
        return f"expected one of {', '.join(json.dumps(e) for e in expected)}, got " \
               f"{json.dumps(value)}"
    if v == "const":
        return f"expected {json.dumps(expected)}, got {json.dumps(value)}"
    if v == "pattern":
        return described_pattern(value, expected)
    if v == "minItems":
        return f"expected at least {expected} item(s), got {len(value)}"
    if v == "not" and isinstance(expected, dict) and set(expected) == {"const"}:
        return f"must not be {json.dumps(expected['const'])}"  # CUE's `!=` constraint
    return str(error.message)


HOSTNAME_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$"
PATTERNS: dict[str, str] = {
    r"^[a-z][a-z0-9-]{0,62}$": "a name: a lowercase letter, then lowercase letters, digits "
                               "and '-', at most 63 characters (e.g. 'edge-1')",
    r"^[A-Z][A-Z0-9_]*$": "an environment variable name: an uppercase letter, then "
                          "uppercase letters, digits and '_' (e.g. 'LOG_LEVEL')",
    r"^/": "a path starting with '/' (e.g. '/healthz')",
    r"^[0-9a-f.:]+/[0-9]{1,3}$": "a CIDR: an address and a prefix length (e.g. "
                                 "'10.0.0.0/16')",
    r"^[0-9a-f]{32}$": "32 lowercase hexadecimal digits (a Cloudflare id)",
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "a date YYYY-MM-DD",
    r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$": "a WireGuard public key (32 bytes, base64)",
    r"^services/[a-z][a-z0-9-]*$": "a service folder 'services/<name>' (e.g. 'services/api')",
    r"^services/[a-z][a-z0-9-]*/": "a path inside a service folder 'services/<name>/'",
}
"""What each pattern of the CUE schema means in words: a message names what was expected,
never the regular expression."""


def described_pattern(value: Any, pattern: str) -> str:
    if pattern == HOSTNAME_PATTERN:
        return hostname_problem(str(value))
    expected = PATTERNS.get(pattern) or f"text matching {pattern}"
    return f"{json.dumps(value)} is not {expected}"


def hostname_problem(host: str) -> str:
    """Why `host` is not a hostname the zone can serve, in words."""
    shown = json.dumps(host, ensure_ascii=False)
    form = ("a hostname: lowercase letters, digits and '-' in dot-separated labels of at "
            "most 63 characters, not starting or ending with '-', ending in a top-level "
            "domain (e.g. 'api.example.com')")
    if not host.isascii():
        try:
            ascii_form = host.encode("idna").decode("ascii")
        except UnicodeError:
            return (f"{shown} is an internationalised hostname that has no ASCII form; "
                    f"expected {form}")
        return (f"{shown} is an internationalised hostname; write its ASCII (punycode) form "
                f"{json.dumps(ascii_form)}; expected {form}")
    if host != host.lower():
        return f"{shown} is not lowercase; write {json.dumps(host.lower())} (expected {form})"
    return f"{shown} is not {form}"
