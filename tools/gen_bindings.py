"""Generate the typed resource bindings (``edgekit/bindings/<provider>.pyi`` + ``.py``) from
the committed provider schemas.

    .venv/bin/python tools/gen_bindings.py [--check] [PROVIDER ...]

For every pinned provider, one ``TypedDict`` per resource, data source, nested block and
nested attribute object, and one for the provider block, with each attribute's
description from the schema. The types live in a stub (``.pyi``) that mypy and editors
read; the runtime module beside it answers every name with ``dict``, so importing it costs
next to nothing and ``HcloudServer(name=..., server_type=...)`` is a plain dict at runtime.
With ``--check`` nothing is written; the exit status is 1 if a committed file differs.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgekit.core.files import write_atomic  # noqa: E402
from edgekit.core.synth import ProviderPin  # noqa: E402
from edgekit.providers.pins import PINS  # noqa: E402
from edgekit.schema.schema_index import read_dump  # noqa: E402

OUT = ROOT / "edgekit" / "bindings"
WIDTH = 96


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]", name) if part)


class _Writer:
    """Collects the classes of one provider's stub in a stable order."""

    def __init__(self) -> None:
        self.classes: list[str] = []
        self.names: set[str] = set()

    def unique(self, name: str) -> str:
        while name in self.names:
            name += "_"
        self.names.add(name)
        return name

    def block(self, name: str, block: dict[str, Any], doc: str) -> str:
        """A TypedDict for a schema block (attributes and nested blocks); returns its name."""
        name = self.unique(name)
        fields: list[tuple[str, str, str]] = []  # key, annotation, doc
        read_only: list[str] = []
        for key, attribute in sorted(block.get("attributes", {}).items()):
            if attribute.get("computed") and not attribute.get("optional") \
                    and not attribute.get("required"):
                read_only.append(key)
                continue
            if "nested_type" in attribute:
                inner = self.block(f"{name}_{camel(key)}", attribute["nested_type"],
                                   _join(f"Attribute `{key}` of {name}.", _text(attribute)))
                annotation = _nested(attribute["nested_type"].get("nesting_mode", "single"),
                                     inner, expression=True)
            else:
                annotation = _type(attribute.get("type", "dynamic"))
            if attribute.get("required"):
                annotation = f"Required[{annotation}]"
            fields.append((key, annotation, _field_doc(attribute)))
        for key, nested in sorted(block.get("block_types", {}).items()):
            inner = self.block(f"{name}_{camel(key)}", nested["block"],
                               _join(f"Block `{key}` of {name}.", _text(nested["block"])))
            annotation = _nested(nested.get("nesting_mode", "single"), inner, expression=False)
            if nested.get("min_items", 0):
                annotation = f"Required[{annotation}]"
            low, high = nested.get("min_items", 0), nested.get("max_items", 0)
            count = f"block, {low}..{high or 'n'}" if (low or high) else "block"
            fields.append((key, annotation, _join(_text(nested["block"]), f"({count})")))
        self.classes.append(_render_class(name, fields, _class_doc(doc, read_only)))
        return name


def _render_class(name: str, fields: list[tuple[str, str, str]], doc: str) -> str:
    if any(keyword.iskeyword(key) or not key.isidentifier() for key, _, _ in fields):
        # The functional form takes any key; it has no place for per-field docs.
        items = "".join(f"    {key!r}: {annotation},\n" for key, annotation, _ in fields)
        return (f"{name} = TypedDict({name!r}, {{\n{items}}}, total=False)\n"
                f"{_comment(doc)}")
    lines = [f"class {name}(TypedDict, total=False):", _docstring(doc, "    ")]
    for key, annotation, field_doc in fields:
        lines.append(f"    {key}: {annotation}")
        if field_doc:
            lines.append(_docstring(field_doc, "    "))
    return "\n".join(lines) + "\n"


def _nested(mode: str, inner: str, *, expression: bool) -> str:
    expr = " | Expr" if expression else ""
    if mode in ("list", "set"):
        return f"Sequence[{inner}]{expr}" if expression else f"{inner} | Sequence[{inner}]"
    if mode == "map":
        return f"Mapping[str, {inner}]{expr}"
    return f"{inner}{expr}"


def _type(type_expr: Any) -> str:
    if isinstance(type_expr, str):
        return {"string": "Str", "number": "Num", "bool": "Bool"}.get(type_expr, "Any")
    kind, inner = type_expr[0], type_expr[1]
    if kind in ("list", "set"):
        return f"Sequence[{_type(inner)}] | Expr"
    if kind == "map":
        return f"Mapping[str, {_type(inner)}] | Expr"
    return "Mapping[str, Any] | Expr" if kind == "object" else "Sequence[Any] | Expr"


def _text(item: dict[str, Any]) -> str:
    return " ".join(str(item.get("description", "")).split())


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _field_doc(attribute: dict[str, Any]) -> str:
    notes = []
    if attribute.get("sensitive"):
        notes.append("Sensitive.")
    if attribute.get("deprecated"):
        notes.append("Deprecated.")
    if attribute.get("computed") and attribute.get("optional"):
        notes.append("Computed by the provider when not set.")
    return _join(_text(attribute), *notes)


def _class_doc(doc: str, read_only: list[str]) -> str:
    tail = f"Read-only (reference them with .attr()): {', '.join(read_only)}." \
        if read_only else ""
    return _join(doc, tail)


def _wrap(text: str, indent: str) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(indent) + len(line) + 1 + len(word) > WIDTH:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _docstring(text: str, indent: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') or "(no description)"
    if text.endswith('"'):
        text += " "
    lines = _wrap(text, indent)
    if len(lines) == 1 and len(indent) + len(lines[0]) + 6 <= WIDTH:
        return f'{indent}"""{lines[0]}"""'
    body = "\n".join(f"{indent}{line}" for line in lines)
    return f'{indent}"""\n{body}\n{indent}"""'


def _comment(text: str) -> str:
    return "".join(f"# {line}\n" for line in _wrap(text, "# ")) if text else ""


def _header(pin: ProviderPin, note: str) -> str:
    return (f'"""Typed configurations for {pin.source} {pin.version}: resources, data '
            f"sources, provider.\n\nGenerated by tools/gen_bindings.py from "
            f"edgekit/schema/data/{pin.name}-{pin.version}.json.gz; do not edit.\n\n"
            f'{note}\n"""\n')


def render(pin: ProviderPin) -> dict[str, str]:
    """The stub and the runtime module of one provider's bindings (file name → text)."""
    raw = read_dump(pin.name, pin.version)
    (schema,) = orjson.loads(raw)["provider_schemas"].values()
    writer = _Writer()
    exported = [writer.block(camel(pin.name) + "Provider", schema["provider"]["block"],
                             f"The provider block of {pin.source}.")]
    for type_name, entry in sorted(schema.get("resource_schemas", {}).items()):
        exported.append(writer.block(camel(type_name), entry["block"],
                                     _join(f"resource {type_name}.", _text(entry["block"]))))
    for type_name, entry in sorted(schema.get("data_source_schemas", {}).items()):
        exported.append(writer.block("Data" + camel(type_name), entry["block"],
                                     _join(f"data source {type_name}.",
                                           _text(entry["block"]))))
    names = sorted(writer.names)
    stub = _header(pin, "Values take a `Ref` or a ``${...}`` expression wherever they take a "
                   "literal.") + (
        "\nfrom collections.abc import Mapping, Sequence\n"
        "from typing import Any, Required, TypedDict\n\n"
        "from edgekit.bindings._types import Bool, Expr, Num, Str\n\n"
        f"PROVIDER: str\nVERSION: str\n__all__ = {_names_literal(names)}\n\n\n"
        + "\n\n".join(writer.classes))
    example = exported[1] if len(exported) > 1 else exported[0]
    runtime = _header(pin, (
        "The types are in the stub beside this module, for mypy and editors. At runtime\n"
        "every name is `dict`: importing this costs next to nothing, and\n"
        f"``{example}(...)`` builds a plain dict.")) + (
        "\nfrom __future__ import annotations\n\n"
        "from typing import Any\n\n"
        f"PROVIDER = {pin.name!r}\nVERSION = {pin.version!r}\n"
        f"__all__ = {_names_literal(names)}\n"
        "_NAMES = frozenset(__all__)\n\n\n"
        "def __getattr__(name: str) -> Any:\n"
        "    if name in _NAMES:\n"
        "        return dict\n"
        "    raise AttributeError(f\"module {__name__!r} has no attribute {name!r}\")\n")
    return {f"{pin.name}.pyi": stub, f"{pin.name}.py": runtime}


def _names_literal(names: list[str]) -> str:
    lines = _wrap(" ".join(f"{n!r}," for n in names), "    ")
    return "[\n" + "".join(f"    {line}\n" for line in lines) + "]"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("providers", nargs="*", help="provider names (default: every pin)")
    args = parser.parse_args()
    stale = []
    for pin in PINS.values():
        if args.providers and pin.name not in args.providers:
            continue
        for filename, text in sorted(render(pin).items()):
            target = OUT / filename
            if not target.is_file() or target.read_text() != text:
                stale.append(filename)
                if not args.check:
                    write_atomic(target, text.encode())
            print(f"{'stale' if filename in stale else 'ok'}: edgekit/bindings/{filename} "
                  f"({len(text) // 1024} KiB)")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
