"""Cross-stack references, the dependencies they make, and the order of stacks.

A `Ref` carries the name of the stack its element lives in. Rendered in another
stack, it became ``${data.terraform_remote_state.<producer>.outputs.<name>}``
(see ``edgekit.core.render``). Here, once every stack is rendered:

* the consumer gets ``data "terraform_remote_state" "<producer>"`` on the
  producer's backend (S3/R2, or the local file seen from the consumer's folder),
  and, when the producer encrypts its state, the consumer decrypts it with the
  same method (``encryption.remote_state_data_sources``); both stacks must then
  share the `StateEncryption` settings (same key name, same passphrase variable);
* the producer gets an output ``xref_<address>_<attrs>`` for each attribute read,
  unless the reference was to one of its outputs (``producer.output("x")``);
* the consumer depends on the producer (``manifest.json`` ``dependencies``); a cycle
  is a problem naming the stacks; `stack_order` sorts stacks so producers come first.

A `Known` value (``other.known("name")``: known at synth time) is already the literal in
the consumer's document and in its state settings; it only adds the dependency (ADR 0020).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from edgekit.core.errors import Problem
from edgekit.core.refs import REMOTE_STATE, Known, Ref, output_name, remote_expression
from edgekit.core.synth import StackResult

Sensitive = Callable[[str, str], bool]
"""(resource type, attribute) → whether the provider marks the attribute sensitive."""


def _never(resource_type: str, attribute: str) -> bool:
    return False


def link(
    results: Mapping[str, StackResult], sensitive: Sensitive = _never
) -> tuple[dict[str, list[str]], list[Problem]]:
    """Wire every cross-stack reference into both documents (in place).

    Returns each stack's dependencies (sorted names) and the problems found.
    """
    deps: dict[str, set[str]] = {name: set() for name in results}
    problems: list[Problem] = []
    for name, result in results.items():
        for other in result.stack.dependencies:
            if other not in results:
                problems.append(Problem(path=result.stack.node.path, message=(
                    f"depends on stack {other!r}, which is not in the app")))
            else:
                deps[name].add(other)
        seen: set[tuple[str, str]] = set()
        for ref in [*result.foreign, *_known_in_state(result)]:
            assert ref.stack is not None
            if isinstance(ref, Known):
                if ref.stack in results:
                    deps[name].add(ref.stack)
                else:
                    problems.append(Problem(path=result.stack.node.path, message=(
                        f"uses {str(ref)!r} of stack {ref.stack!r}, which is not in the app "
                        f"(stacks: {', '.join(sorted(results))})")))
                continue
            key = (ref.stack, output_name(ref))
            if key in seen:
                continue
            seen.add(key)
            producer = results.get(ref.stack)
            if producer is None:
                problems.append(Problem(path=result.stack.node.path, message=(
                    f"reference to {ref.expression} in stack {ref.stack!r}, which is not "
                    f"in the app (stacks: {', '.join(sorted(results))})")))
                continue
            problem, secret = _publish(producer, ref, sensitive)
            if problem is None:
                problem = _read_remote(result, producer)
            if problem is not None:
                problems.append(problem)
                continue
            if secret:
                _mark_sensitive(result.document, "${" + remote_expression(ref) + "}")
            deps[name].add(producer.stack.name)
    problems.extend(_cycle_problems(deps))
    return {name: sorted(d) for name, d in deps.items()}, problems


def _known_in_state(result: StackResult) -> list[Known]:
    """`Known` values of other stacks in a stack's state settings (e.g. the bucket)."""
    state = result.stack.state
    values = [getattr(state, field.name) for field in attrs.fields(type(state))]
    return [v for v in values if type(v) is Known and v.stack != result.stack.name]


def _mark_sensitive(value: Any, expression: str) -> Any:
    """Wrap every whole-value read of a sensitive remote output in ``sensitive()``:
    ``terraform_remote_state`` drops the producer's sensitivity, so plans would show it."""
    wrapped = "${sensitive(" + expression[2:-1] + ")}"
    if isinstance(value, dict):
        for key, item in value.items():
            if item == expression:
                value[key] = wrapped
            else:
                _mark_sensitive(item, expression)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if item == expression:
                value[i] = wrapped
            else:
                _mark_sensitive(item, expression)
    return value


def explain_foreign_reads(problems: list[Problem],
                          results: Mapping[str, StackResult]) -> list[Problem]:
    """A "not in stack" read of an address another stack has (a Ref inside an f-string or
    a hand-written ``${...}``) says where it is and how to read it across stacks."""
    owners: dict[str, list[str]] = {}
    for name, result in results.items():
        for item in result.rendered:
            owners.setdefault(item.element.address, []).append(name)
    out = []
    for problem in problems:
        address = problem.message.split(" ", 3)[2].rstrip(",") \
            if problem.message.startswith("reference to ") else ""
        stacks = [s for s in owners.get(address, []) if f"stack {s!r}" not in problem.message]
        if "which is not in stack" in problem.message and stacks:
            problem = Problem(path=problem.path, address=problem.address,
                              pointer=problem.pointer, message=(
                                  f"{problem.message.split('; did you mean')[0]}; it is in "
                                  f"stack {stacks[0]!r}: pass the Ref itself as the value "
                                  "(not inside a string) to read it through that stack's "
                                  "remote state"))
        out.append(problem)
    return out


def _publish(producer: StackResult, ref: Ref,
             sensitive: Sensitive) -> tuple[Problem | None, bool]:
    """Make sure the producer has the output `ref` reads; say whether it is sensitive."""
    outputs: dict[str, Any] = producer.document.setdefault("output", {})
    name = output_name(ref)
    path = producer.stack.node.path
    if ref.address.startswith("output."):
        if name not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            return Problem(path=path, address=ref.address, message=(
                f"another stack reads output {name!r}, which stack {producer.stack.name!r} "
                f"does not have (outputs: {known})")), False
        return None, bool(outputs[name].get("sensitive"))
    owners = {item.element.address: item.element for item in producer.rendered}
    element = owners.get(ref.address)
    if element is None:
        return Problem(path=path, address=ref.address, message=(
            f"another stack reads {ref.expression}, which is not in stack "
            f"{producer.stack.name!r}")), False
    spec: dict[str, Any] = {
        "value": "${" + ref.expression + "}",
        "description": "Read by another stack (edgekit cross-stack reference).",
    }
    resource_type = getattr(element, "type", "")
    if ref.attr_path and resource_type and sensitive(resource_type, ref.attr_path[0]):
        spec["sensitive"] = True
    outputs[name] = spec
    return None, bool(spec.get("sensitive"))


def _read_remote(consumer: StackResult, producer: StackResult) -> Problem | None:
    """Add the producer's remote state data source (and decryption) to the consumer."""
    backend = producer.stack.state.backend(producer.stack.name)
    (kind, settings), = backend.items()
    config = {k: v for k, v in settings.items() if k != "use_lockfile"}
    if kind == "local":
        path = str(config.get("path", "terraform.tfstate"))
        if not path.startswith("/"):  # relative to the producer's folder: seen from ours
            config["path"] = posixpath.normpath(f"../{producer.stack.name}/{path}")
    data = consumer.document.setdefault("data", {}).setdefault(REMOTE_STATE, {})
    data[producer.stack.name] = {"backend": kind, "config": config}
    theirs, ours = producer.stack.encryption, consumer.stack.encryption
    if theirs is None:
        return None
    where = consumer.stack.node.path
    if ours is None:
        return Problem(path=where, message=(
            f"reads the encrypted state of stack {producer.stack.name!r} but has no state "
            "encryption; give both stacks the same StateEncryption"))
    if ours != theirs:
        return Problem(path=where, message=(
            f"reads the state of stack {producer.stack.name!r}, encrypted with other "
            f"settings ({theirs}); cross-stack references need the same StateEncryption "
            "(key name and passphrase variable) on both stacks"))
    block = consumer.document["terraform"]["encryption"]
    sources = block.setdefault("remote_state_data_sources", {})
    sources.setdefault("remote_state_data_source", {})[producer.stack.name] = {
        "method": f"method.aes_gcm.{ours.name}"
    }
    return None


def _cycle_problems(deps: Mapping[str, set[str]]) -> list[Problem]:
    problems: list[Problem] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    reported: set[frozenset[str]] = set()

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        trail.append(name)
        for dep in sorted(deps.get(name, ())):
            if state.get(dep) == 1:
                cycle = [*trail[trail.index(dep):], dep]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    problems.append(Problem(path=cycle[0], message=(
                        "stacks depend on each other in a cycle: " + " → ".join(cycle)
                        + "; a stack can only read from stacks applied before it")))
            elif dep not in state:
                visit(dep, trail)
        trail.pop()
        state[name] = 2

    for name in sorted(deps):
        if name not in state:
            visit(name, [])
    return problems


def stack_order(names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """`names` with every stack after the stacks it depends on; ties keep `names` order.

    Dependencies outside `names` are ignored; a cycle raises `ValueError`.
    """
    chosen = set(names)
    pending = {n: {d for d in deps.get(n, ()) if d in chosen} for n in names}
    order: list[str] = []
    while pending:
        ready = [n for n in names if n in pending and not pending[n]]
        if not ready:
            raise ValueError("stacks depend on each other in a cycle: "
                             + ", ".join(sorted(pending)))
        for name in ready:
            order.append(name)
            del pending[name]
        for rest in pending.values():
            rest.difference_update(ready)
    return order


def with_dependencies(names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """`names` and every stack they depend on, transitively, in dependency order."""
    todo, seen = list(names), set(names)
    while todo:
        for dep in deps.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return stack_order(sorted(seen), deps)
