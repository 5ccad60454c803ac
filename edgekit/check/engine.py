"""The rule engine: a catalogue of rules, each one small function over a `Context`.

A rule is registered with `rule(...)`: a stable id (``EK101``), a one-line title, a
severity, the documentation it rests on (a URL or a provider source file), and a fix
hint. Its function yields `Hit`s; the engine turns them into `Finding`s, applies the
suppressions found on the construct tree (``node.suppress("EK101", reason=...)`` on a
construct silences that rule for it and everything below it), and sorts them.

A `Context` is plain data: the synthesized documents (with, when there is a tree, the
construct path of every address) and the layouts of the environments (what the
constructs recorded, `edgekit.constructs.facts`, and what the CUE adapter made of the CUE
estate, `edgekit.cue.layout`: one shape, so one rule judges both). `edgekit check` and
every synth build one; the mutation benchmark builds one from JSON alone.

A fix hint may name ``{file}`` and ``{services_file}``: a finding fills them with the file
the user edits (a Python stack's own file, or ``cue/envs.cue``): the rule's own choice, else
the file that built the finding's stack (its layout). A fix never hard-codes a CUE file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from edgekit.constructs.facts import Layout

Severity = Literal["error", "warning"]
RULE_ID = re.compile(r"^EK[0-9]{3}$")


@attrs.frozen(kw_only=True)
class Hit:
    """What a rule function reports: one place and what is wrong there."""

    message: str
    stack: str = ""
    path: str = ""
    """Construct path; filled from `address` when the stack knows it."""
    address: str = ""
    pointer: str = ""
    key: str = ""
    """Hits of one rule and stack with the same non-empty key are one finding (the first
    is kept): a fault the CUE estate and the constructs built from it both describe."""
    files: Mapping[str, str] = attrs.field(factory=dict)
    """What the rule's fix names as ``{file}`` / ``{services_file}``."""


FIX_FILES = {"file": "the file that places it (your stack's .py file, or cue/envs.cue)",
             "services_file": "the file that defines the service (your stack's .py file, "
                              "or cue/services.cue)"}
"""How a fix hint reads when no finding fills it in (the catalogue)."""


def fix_text(fix: str, files: Mapping[str, str] | None = None) -> str:
    for name, default in FIX_FILES.items():
        fix = fix.replace(f"{{{name}}}", (files or {}).get(name) or default)
    return fix


@attrs.frozen(kw_only=True)
class Finding:
    """One located finding of one rule."""

    rule: str
    severity: Severity
    message: str
    path: str
    address: str = ""
    pointer: str = ""
    stack: str = ""
    fix: str = ""
    suppressed: str | None = None
    """The reason given to ``node.suppress``; None when the finding stands."""

    def __str__(self) -> str:
        where = f"[{self.path or self.stack or '<app>'}]"
        if self.address:
            where += f" {self.address}:"
        tail = f" @ {self.pointer}" if self.pointer else ""
        return f"{self.rule} {where} {self.message}{tail}"


RuleFunc = Callable[["Context"], Iterable[Hit]]


@attrs.frozen(kw_only=True)
class Rule:
    id: str
    title: str
    severity: Severity
    source_of: str | Callable[[], str] = attrs.field(alias="source")
    """Where the fact comes from: a documentation URL or a provider source file; or what
    says it when asked (a text made from every cloud's tables loads every cloud)."""
    fix: str
    concern: str
    func: RuleFunc = attrs.field(eq=False, repr=False)

    @property
    def source(self) -> str:
        return self.source_of if isinstance(self.source_of, str) else self.source_of()


REGISTRY: dict[str, Rule] = {}


def rule(id: str, *, title: str, severity: Severity, source: str | Callable[[], str],
         fix: str) -> Callable[[RuleFunc], RuleFunc]:
    """Register a rule function under a stable id (decorator); `source` may be a function
    that makes the text when it is first shown."""
    if not RULE_ID.match(id):
        raise ValueError(f"rule id {id!r} is not EK followed by three digits")

    def register(func: RuleFunc) -> RuleFunc:
        if id in REGISTRY:
            raise ValueError(f"rule id {id} registered twice ({REGISTRY[id].func.__name__}, "
                             f"{func.__name__})")
        concern = func.__module__.rsplit(".", 1)[-1]
        REGISTRY[id] = Rule(id=id, title=title, severity=severity, source=source, fix=fix,
                            concern=concern, func=func)
        return func

    return register


@attrs.frozen
class StackView:
    """One synthesized stack as the rules see it."""

    name: str
    document: Mapping[str, Any]
    paths: Mapping[str, str] = attrs.field(factory=dict)
    """OpenTofu address → construct path (empty when checking JSON alone)."""

    def path_of(self, address: str) -> str:
        return self.paths.get(address) or f"{self.name}/{address}"

    def resources(self, *types: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(type, address, body) of every resource (of the given types), in order."""
        section = self.document.get("resource")
        if not isinstance(section, Mapping):
            return
        for type_name in sorted(section):
            if types and type_name not in types:
                continue
            bodies = section[type_name]
            if not isinstance(bodies, Mapping):
                continue
            for name in sorted(bodies):
                body = bodies[name]
                if isinstance(body, dict):
                    yield type_name, f"{type_name}.{name}", body

    def hit(self, address: str, message: str, pointer: str = "") -> Hit:
        return Hit(message=message, stack=self.name, path=self.path_of(address),
                   address=address, pointer=pointer)


@attrs.frozen
class Context:
    stacks: tuple[StackView, ...] = ()
    layouts: tuple[Layout, ...] = ()
    """Each environment's layout; a CUE-made one before the constructs' of the same stack,
    so a finding both give is located in CUE."""
    suppressions: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)
    """Construct path → {rule id → reason}."""


def suppression_for(ctx: Context, rule_id: str, path: str) -> str | None:
    parts = path.split("/") if path else []
    for depth in range(len(parts), -1, -1):
        found = ctx.suppressions.get("/".join(parts[:depth]), {}).get(rule_id)
        if found is not None:
            return found
    return None


def run(ctx: Context, rules: Sequence[Rule]) -> list[Finding]:
    """Every finding of `rules` (suppressed ones marked), sorted by place and rule
    (`edgekit.check.rules.catalogue()` is every rule)."""
    findings: list[Finding] = []
    # a finding about a stack's documents names the file that built the stack: the first
    # layout of the stack (CUE's before the constructs', as the context orders them)
    files_of: dict[str, Mapping[str, str]] = {}
    for layout in ctx.layouts:
        if layout.file:
            files_of.setdefault(layout.stack, {"file": layout.file,
                                               "services_file": layout.services_file})
    for entry in rules:
        try:
            hits = list(entry.func(ctx))
        except Exception as err:  # a rule must never turn bad input into a traceback
            hits = [Hit(message=f"the rule could not run on this input "
                        f"({type(err).__name__}: {err}); fix the input or report it")]
        seen: set[tuple[str, str]] = set()
        for hit in hits:
            if hit.key:
                if (hit.stack, hit.key) in seen:
                    continue
                seen.add((hit.stack, hit.key))
            path = hit.path or hit.stack
            findings.append(Finding(
                rule=entry.id, severity=entry.severity, message=hit.message, path=path,
                address=hit.address, pointer=hit.pointer, stack=hit.stack,
                fix=fix_text(entry.fix, hit.files or files_of.get(hit.stack)),
                suppressed=suppression_for(ctx, entry.id, path)))
    findings.sort(key=lambda f: (f.stack, f.path, f.rule, f.address, f.pointer, f.message))
    return findings


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error" and f.suppressed is None]
