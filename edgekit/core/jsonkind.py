"""What kind of JSON value a value is, in the words of whoever reads the message: JSON
Schema's (the CUE-exported schemas of construct properties), OpenTofu's (provider
schemas) or plain prose (a file edgekit reads back, e.g. the manifest). One
implementation for all three."""

from __future__ import annotations

from typing import Any

JSON_SCHEMA = {"bool": "boolean", "int": "integer", "float": "number", "str": "string",
               "list": "array", "dict": "object", "none": "null"}
OPENTOFU = {"bool": "bool", "int": "number", "float": "number", "str": "string",
            "list": "list", "dict": "object", "none": "null"}
PROSE = {"bool": "a boolean", "int": "a number", "float": "a number", "str": "a string",
         "list": "a list", "dict": "an object", "none": "null"}


def value_kind(value: Any, words: dict[str, str] = JSON_SCHEMA) -> str:
    """``integer`` for 5 (JSON Schema), ``number`` with `OPENTOFU`; a bool is never a number."""
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str),
                        ("list", list), ("dict", dict)):
        if isinstance(value, types):
            return words[kind]
    return words["none"] if value is None else type(value).__name__
