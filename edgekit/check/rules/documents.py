"""The documents themselves: every block matches its provider's schema and every reference
names something in the stack (what `tofu validate` checks, without starting tofu)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.walk import strings
from edgekit.clouds import kind_of

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


AVAILABLE = re.compile(r"Available values: ((?:\"[^\"]*\"(?:, )?)+)")
QUOTED = re.compile(r"\"([^\"]*)\"")
Enums = dict[tuple[str, ...], tuple[str, ...]]


def _schema_enums(block: Mapping[str, Any], prefix: tuple[str, ...], out: Enums) -> None:
    for key, attribute in block.get("attributes", {}).items():
        found = AVAILABLE.search(attribute.get("description") or "")
        if found:
            out[(*prefix, key)] = tuple(QUOTED.findall(found.group(1)))
        nested = attribute.get("nested_type")
        if nested:
            _schema_enums(nested, (*prefix, key), out)
    for key, nested_block in block.get("block_types", {}).items():
        _schema_enums(nested_block.get("block", {}), (*prefix, key), out)


_ENUMS: dict[str, Enums] = {}


def enums_for(type_name: str) -> Enums:
    """Attribute path (below the resource) → allowed values, from the schema and the cloud
    adapter's `Kind.enums`."""
    if type_name not in _ENUMS:
        from edgekit.providers.pins import PINS
        from edgekit.schema import schema_index

        found: Enums = {}
        pin = PINS.get(type_name.split("_", 1)[0])
        schema = schema_index.load(pin.name, pin.version) if pin else None
        block = schema.block("resource_schemas", type_name) if schema else None
        if block:
            _schema_enums(block, (), found)
        kind = kind_of(type_name)  # what a cloud validates beyond its schema dump
        found.update(kind.enums if kind is not None else {})
        _ENUMS[type_name] = found
    return _ENUMS[type_name]


def _values_at(value: Any, path: tuple[str, ...], pointer: str) -> Iterator[tuple[str, Any]]:
    if not path:
        yield pointer, value
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _values_at(item, path, f"{pointer}[{index}]")
    elif isinstance(value, Mapping) and path[0] in value:
        yield from _values_at(value[path[0]], path[1:], f"{pointer}.{path[0]}")


@rule("EK105", title="enumerated attributes hold one of the provider's values",
      severity="error",
      source="\"Available values\" in edgekit/schema/data/cloudflare-*.json.gz; the cloud "
      "adapters' `Kind.enums`: linode 3.13.0 "
      "linode/firewall/framework_schema_resource.go (OneOf); vultr 2.32.0 "
      "vultr/resource_vultr_instance.go, resource_vultr_firewall_rule.go (StringInSlice); "
      "hcloud docs/resources/firewall.md (direction in|out)",
      fix="use one of the listed values (they are case-sensitive)")
def enum_values(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources():
            for path, allowed in sorted(enums_for(type_name).items()):
                for pointer, value in _values_at(body, path, "$"):
                    if isinstance(value, str) and "${" not in value and value not in allowed:
                        yield stack.hit(address, f"{'.'.join(path)} {value!r} is not one of "
                                        f"{', '.join(allowed)}", pointer)
