"""The documents themselves: every block matches its provider's schema and every reference
names something in the stack (what `tofu validate` checks, without starting tofu)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.walk import strings

INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
REFERENCE = re.compile(r"(?<![\w.:])(var|local|data\.[a-z][a-z0-9_]*|module|"
                       r"[a-z][a-z0-9]*_[a-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_-]*)")
NOT_ADDRESSES = frozenset({"each", "count", "self", "path", "terraform"})


def _defined(document: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for section, prefix in (("variable", "var"), ("locals", "local"), ("module", "module")):
        block = document.get(section)
        if isinstance(block, Mapping):
            names.update(f"{prefix}.{key}" for key in block)
    for section, prefix in (("resource", ""), ("data", "data.")):
        block = document.get(section)
        if isinstance(block, Mapping):
            for type_name, bodies in block.items():
                if isinstance(bodies, Mapping):
                    names.update(f"{prefix}{type_name}.{key}" for key in bodies)
    return names


def _elements(document: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(address, body) of every element that can hold references."""
    for section, prefix in (("resource", ""), ("data", "data.")):
        block = document.get(section)
        for type_name, bodies in block.items() if isinstance(block, Mapping) else ():
            for name, body in bodies.items() if isinstance(bodies, Mapping) else ():
                yield f"{prefix}{type_name}.{name}", body
    for section, prefix in (("output", "output."), ("locals", "local."), ("module", "module.")):
        block = document.get(section)
        for name, body in block.items() if isinstance(block, Mapping) else ():
            yield f"{prefix}{name}", body
    block = document.get("provider")
    for type_name, body in block.items() if isinstance(block, Mapping) else ():
        yield f"provider.{type_name}", body


def _references(stack: StackView) -> Iterator[Hit]:
    defined = _defined(stack.document)
    for address, body in _elements(stack.document):
        for pointer, text in strings(body):
            for inner in INTERPOLATION.findall(text):
                for head, name in REFERENCE.findall(inner):
                    target = f"{head}.{name}"
                    if head not in NOT_ADDRESSES and target not in defined:
                        yield stack.hit(address, f"reference to {target}, which is not in "
                                        "the stack", pointer)


def _schemas(stack: StackView) -> Iterator[Hit]:
    from edgekit.providers.pins import PINS
    from edgekit.schema.provider_schema import PROVIDER_META, RESOURCE_META, SchemaCheck

    check = SchemaCheck(PINS)
    for section, kind in (("resource", "resource_schemas"), ("data", "data_source_schemas")):
        block = stack.document.get(section)
        if not isinstance(block, Mapping):
            continue
        for type_name in sorted(block):
            bodies = block[type_name]
            prefix = "data." if section == "data" else ""
            for name in sorted(bodies) if isinstance(bodies, Mapping) else []:
                address = f"{prefix}{type_name}.{name}"
                for pointer, message in check._check_element(
                        kind, type_name.split("_", 1)[0], type_name, bodies[name],
                        RESOURCE_META):
                    yield stack.hit(address, message, pointer)
    providers = stack.document.get("provider")
    if isinstance(providers, Mapping):
        for type_name in sorted(providers):
            configs = providers[type_name]
            for body in configs if isinstance(configs, list) else [configs]:
                for pointer, message in check._check_element(
                        "provider", type_name, type_name, body, PROVIDER_META):
                    yield stack.hit(f"provider.{type_name}", message, pointer)


@rule("EK100", title="every block matches its provider's schema; every reference resolves",
      severity="error",
      source="edgekit/schema/data/*.json.gz (`tofu providers schema -json` of the pinned "
      "providers)",
      fix="see the message: the attribute name, type or reference it names")
def documents_valid(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        if not isinstance(stack.document, Mapping):
            yield Hit(message="the stack's document is not a JSON object", stack=stack.name)
            continue
        yield from _schemas(stack)
        yield from _references(stack)
