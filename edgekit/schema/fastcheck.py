"""A JSON Schema compiled into one Python predicate: "is this instance valid?", fast.

jsonschema's validator walks the schema for every instance, resolving each ``$ref``
through URI machinery; for the thousands of props a large stack validates that is
most of the construct path's time. The schemas CUE exports use a small subset of
Draft 2020-12, so that subset is compiled once into closures here. They only say
valid or not: when an instance is invalid, the caller runs jsonschema to describe
every problem, so messages stay exactly jsonschema's.

`compile_schema` returns None for a schema that uses any keyword outside the subset
(the caller then always uses jsonschema): the predicate never decides what it does
not understand. A Hypothesis test checks it agrees with jsonschema.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[Any], bool]

# Keywords that never affect validity.
_ANNOTATIONS = frozenset({"$comment", "$defs", "$schema", "description", "title", "default",
                          "examples", "deprecated", "readOnly", "writeOnly"})


class Unsupported(Exception):
    """The schema uses something this compiler does not handle."""


def compile_schema(schema: Any) -> Predicate | None:
    """One predicate for `schema`, or None if it uses a keyword outside the subset."""
    try:
        return _Compiler(schema).compile(schema)
    except Unsupported:
        return None


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is int or kind is float:
        return True
    if kind is str or kind is bool or kind is dict or kind is list or value is None:
        return False  # the common non-numbers, without the slow ABC check below
    return isinstance(value, numbers.Number)


_TYPES: dict[str, Predicate] = {
    "null": lambda v: v is None,
    "boolean": lambda v: type(v) is bool,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: _is_number(v),
    "integer": lambda v: type(v) is int or (type(v) is float and v.is_integer()),
}


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``True`` is not ``1``; lists and objects deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    return bool(a == b)


def _all(checks: list[Predicate]) -> Predicate:
    """One predicate that holds when every check holds, without a loop for few checks."""
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    return lambda v: all(check(v) for check in checks)


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


class _Compiler:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.refs: dict[str, Predicate] = {}
        self.compiling: set[str] = set()

    def compile(self, schema: Any) -> Predicate:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise Unsupported(repr(schema))
        for key in schema:
            if key not in _SUPPORTED and not key.startswith("x-"):
                raise Unsupported(key)  # e.g. $id, if/then, dependentSchemas, format
        checks = [build(self, schema) for keys, build in _BUILDERS
                  if not keys.isdisjoint(schema)]
        return _all(checks)

    def ref(self, target: str) -> Predicate:
        if not target.startswith("#/"):
            raise Unsupported(f"$ref {target}")
        if target not in self.refs:
            self.compiling.add(target)
            self.refs[target] = _never  # placeholder while compiling recursive schemas
            node: Any = self.root
            for part in target[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, dict) or part not in node:
                    raise Unsupported(f"$ref {target}")
                node = node[part]
            self.refs[target] = self.compile(node)
            self.compiling.discard(target)
        if target not in self.compiling:
            return self.refs[target]
        refs = self.refs  # a recursive reference: looked up when called
        return lambda v: refs[target](v)


def _type(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    names = schema["type"]
    if isinstance(names, str):
        names = [names]
    try:
        checks = [_TYPES[n] for n in names]
    except KeyError as err:
        raise Unsupported(f"type {err}") from None
    if len(checks) == 1:
        return checks[0]
    return lambda v: any(check(v) for check in checks)


def _ref(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    return c.ref(schema["$ref"])


def _enum(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    options = list(schema["enum"])
    if all(isinstance(o, str) for o in options):
        strings = frozenset(options)
        return lambda v: isinstance(v, str) and v in strings
    return lambda v: any(json_equal(v, o) for o in options)


def _const(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    expected = schema["const"]
    if isinstance(expected, str):  # what json_equal decides for a string, directly
        return lambda v: isinstance(v, str) and v == expected
    if expected is None:
        return lambda v: v is None
    if isinstance(expected, bool):
        return lambda v: type(v) is bool and v == expected
    return lambda v: json_equal(v, expected)


def _not(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    inner = c.compile(schema["not"])
    return lambda v: not inner(v)


def _all_of(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    return _all([c.compile(s) for s in schema["allOf"]])


def _any_of(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    inner = [c.compile(s) for s in schema["anyOf"]]
    return lambda v: any(check(v) for check in inner)


def _one_of(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    inner = [c.compile(s) for s in schema["oneOf"]]
    return lambda v: sum(1 for check in inner if check(v)) == 1


def _object(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    """properties, patternProperties, additionalProperties, required, min/maxProperties."""
    props = {k: c.compile(s) for k, s in schema.get("properties", {}).items()}
    patterns = [(re.compile(p), c.compile(s))
                for p, s in schema.get("patternProperties", {}).items()]
    extra = c.compile(schema["additionalProperties"]) \
        if "additionalProperties" in schema else None
    required = tuple(schema.get("required", ()))
    low, high = schema.get("minProperties"), schema.get("maxProperties")

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for key in required:
            if key not in value:
                return False
        if low is not None and len(value) < low:
            return False
        if high is not None and len(value) > high:
            return False
        if not patterns:  # what CUE writes: each key is a property, or extra
            for key, item in value.items():
                known = props.get(key)
                if known is None:
                    if extra is not None and not extra(item):
                        return False
                elif not known(item):
                    return False
            return True
        for key, item in value.items():
            known = props.get(key)
            matched = known is not None
            if known is not None and not known(item):
                return False
            for pattern, inner in patterns:
                if pattern.search(key):
                    matched = True
                    if not inner(item):
                        return False
            if not matched and extra is not None and not extra(item):
                return False
        return True

    return check


def _array(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    """prefixItems, items, minItems, maxItems, uniqueItems."""
    prefix = [c.compile(s) for s in schema.get("prefixItems", ())]
    rest = c.compile(schema["items"]) if "items" in schema else None
    low, high = schema.get("minItems"), schema.get("maxItems")
    unique = schema.get("uniqueItems") is True

    def check(value: Any) -> bool:
        if not isinstance(value, list):
            return True
        if low is not None and len(value) < low:
            return False
        if high is not None and len(value) > high:
            return False
        for inner, item in zip(prefix, value, strict=False):
            if not inner(item):
                return False
        if rest is not None:
            for item in value[len(prefix):]:
                if not rest(item):
                    return False
        if unique:
            for i, item in enumerate(value):
                if any(json_equal(item, other) for other in value[i + 1:]):
                    return False
        return True

    return check


def _number(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")

    def check(value: Any) -> bool:
        if not _is_number(value):
            return True
        return not ((low is not None and value < low) or (high is not None and value > high)
                    or (xlow is not None and value <= xlow)
                    or (xhigh is not None and value >= xhigh))

    return check


def _string(c: _Compiler, schema: dict[str, Any]) -> Predicate:
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    low, high = schema.get("minLength"), schema.get("maxLength")

    def check(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        if low is not None and len(value) < low:
            return False
        if high is not None and len(value) > high:
            return False
        return pattern is None or pattern.search(value) is not None

    return check


_BUILDERS: tuple[tuple[frozenset[str], Callable[[_Compiler, dict[str, Any]], Predicate]], ...] = (
    (frozenset({"type"}), _type),
    (frozenset({"$ref"}), _ref),
    (frozenset({"enum"}), _enum),
    (frozenset({"const"}), _const),
    (frozenset({"not"}), _not),
    (frozenset({"allOf"}), _all_of),
    (frozenset({"anyOf"}), _any_of),
    (frozenset({"oneOf"}), _one_of),
    (frozenset({"properties", "patternProperties", "additionalProperties", "required",
                "minProperties", "maxProperties"}), _object),
    (frozenset({"prefixItems", "items", "minItems", "maxItems", "uniqueItems"}), _array),
    (frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}), _number),
    (frozenset({"pattern", "minLength", "maxLength"}), _string),
)
"""Each builder compiles the keywords of its group that a schema uses; groups in this
order put the cheap type test first."""
_SUPPORTED = frozenset().union(*(keys for keys, _ in _BUILDERS)) | _ANNOTATIONS
