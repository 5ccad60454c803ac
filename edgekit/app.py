"""The app: the root of the tree, and the synth of all its stacks into ``cdktf.out/``.

The output layout is the one the cdktf/cdktn CLI writes, so ``cdktf synth`` and
``edgekit synth`` give the same files::

    cdktf.out/manifest.json
    cdktf.out/stacks/<stack>/cdk.tf.json
    cdktf.out/stacks/<stack>/edgekit.tftest.json

Synth reads top to bottom: aspects → render and check every stack → (only if no
stack has a problem) write everything at once.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import attrs

from edgekit.core.construct import Construct, TestAssertion
from edgekit.core.crossref import explain_foreign_reads, link, stack_order
from edgekit.core.elements import DataSource, Provider, Resource
from edgekit.core.errors import ConstructError, Problem, SynthError
from edgekit.core.gcpause import gc_paused
from edgekit.core.refs import Known, output_name
from edgekit.core.stack import Stack
from edgekit.core.synth import (
    Check,
    StackResult,
    provider_name,
    rendered_pairs,
    run_aspects,
    synth_stack,
)
from edgekit.core.tftest import test_document
from edgekit.core.writer import (
    Chunk,
    LazyFiles,
    LazyList,
    dump_json,
    json_chunks,
    write_tree,
)
from edgekit.providers.pins import MOCK_DEFAULTS, MOCK_TYPE_DEFAULTS, PINS

MANIFEST_VERSION = "0.21.0"
"""The cdktf manifest format version whose layout we write."""
STACK_FILE = "cdk.tf.json"
TEST_FILE = "edgekit.tftest.json"


@attrs.frozen
class SynthReport:
    """What one synth produced, for the CLI to print."""

    outdir: Path
    stacks: tuple[str, ...]
    resources: int
    files: int
    warnings: tuple[Problem, ...] = ()
    suppressed: tuple[str, ...] = ()
    """Check rules silenced by ``node.suppress``: one line per rule and reason."""


class App(Construct):
    """The root construct. Stacks are its children."""

    def __init__(
        self,
        *,
        outdir: str | os.PathLike[str] | None = None,
        check_schemas: bool = True,
        checks: Sequence[Check] = (),
        rules: bool = True,
    ) -> None:
        super().__init__(None, "")
        self.outdir = Path(outdir or os.environ.get("CDKTF_OUTDIR") or "cdktf.out")
        self._checks: list[Check] = list(checks)
        self._schema_check = check_schemas
        self._aspects_ran = False
        self._rules = rules
        self.rule_findings: list[Any] = []
        """Findings of the last synth that did not stop it (warnings, suppressed)."""
        self._dependencies: dict[str, list[str]] = {}

    @property
    def dependencies(self) -> dict[str, list[str]]:
        """Each stack's dependencies (from cross-stack references and `add_dependency`),
        as of the last synth."""
        return dict(self._dependencies)

    def ordered_stacks(self) -> list[str]:
        """Stack names, producers before consumers (synthesizes to find the references)."""
        self.synth_results()
        return stack_order([s.name for s in self.stacks], self._dependencies)

    def disable_schema_check(self) -> None:
        """Skip the provider schema check (the CLI's ``--no-schema-check``)."""
        self._schema_check = False

    def disable_rules(self) -> None:
        """Skip the preflight rules (`edgekit check` runs them itself, over every stack)."""
        self._rules = False

    def _all_checks(self) -> list[Check]:
        if not self._schema_check:
            return self._checks
        from edgekit.schema.provider_schema import SchemaCheck  # loaded only when used

        return [SchemaCheck(PINS), *self._checks]

    @property
    def stacks(self) -> list[Stack]:
        return [c for c in self.node.children if isinstance(c, Stack)]

    def stack(self, name: str) -> Stack:
        for stack in self.stacks:
            if stack.name == name:
                return stack
        known = ", ".join(s.name for s in self.stacks) or "none"
        raise ConstructError(f"no stack named {name!r} (stacks: {known})")

    @gc_paused
    def synth_results(self, only: Sequence[str] | None = None) -> list[StackResult]:
        """Render and check the chosen stacks; raise `SynthError` with every problem."""
        if not self._aspects_ran:
            run_aspects(self)
            self._aspects_ran = True
        chosen = [self.stack(name) for name in only] if only else self.stacks
        if not chosen:
            raise SynthError([Problem(path="<app>", message="the app has no stacks")])
        # Every stack is rendered: a chosen stack may read from (or be read by) another.
        everything = {stack.name: synth_stack(stack, PINS) for stack in self.stacks}
        self._dependencies, problems = link(everything, _schema_sensitive)
        results = [everything[stack.name] for stack in chosen]
        for result in results:
            problems.extend(result.problems)
            if not result.problems:
                for check in self._all_checks():
                    problems.extend(check(result))
        if not problems and self._rules:
            from edgekit.check.context import synth_rules  # the rules load only when used

            errors, self.rule_findings = synth_rules(self, results)
            problems.extend(errors)
        if problems:
            raise SynthError(explain_foreign_reads(problems, everything))
        return results

    def synth_files(self, only: Sequence[str] | None = None) -> dict[str, bytes]:
        """Every output file (relative path → bytes) of the chosen stacks and the manifest."""
        return dict(self._files(self.synth_results(only), self._kept(only)))

    def prepare(self, only: Sequence[str] | None = None
                ) -> tuple[SynthReport, LazyFiles, dict[str, Path]]:
        """Synthesize without writing: the report, every output file (relative path →
        bytes, each rendered when read: every check has passed already) and the folders of
        stacks not synthesized this time, to carry over."""
        results = self.synth_results(only)
        kept = self._kept(only)
        files = self._files(results, kept)
        resources = sum(
            len(r) for res in results for r in res.document.get("resource", {}).values()
        )
        warnings = tuple(w for r in results for w in r.warnings)
        counts = Counter((f.rule, f.suppressed) for f in self.rule_findings
                         if f.suppressed is not None)
        suppressed = tuple(f"{rule} suppressed for {n} finding(s) (`edgekit check` lists "
                           f"them): {reason}" for (rule, reason), n in sorted(counts.items()))
        report = SynthReport(self.outdir, tuple(r.stack.name for r in results), resources,
                             len(files), warnings, suppressed)
        return report, files, {f"stacks/{n}": p for n, p in kept.items()}

    def synth(self, only: Sequence[str] | None = None) -> SynthReport:
        """Synthesize and write atomically. On any problem nothing is written."""
        report, files, keep = self.prepare(only)
        write_tree(self.outdir, files, keep)
        return report

    def _kept(self, only: Sequence[str] | None) -> dict[str, Path]:
        """Folders of stacks not synthesized this time, carried over unchanged."""
        if not only:
            return {}
        kept = {}
        for stack in self.stacks:
            folder = self.outdir / "stacks" / stack.name
            if stack.name not in only and (folder / STACK_FILE).is_file():
                kept[stack.name] = folder
        return kept

    def _files(self, results: list[StackResult], kept: dict[str, Path]) -> LazyFiles:
        files = LazyFiles()
        for result in results:
            folder = f"stacks/{result.stack.name}"
            files.add(f"{folder}/{STACK_FILE}", functools.partial(json_chunks,
                                                                  result.document))
            files.add(f"{folder}/{TEST_FILE}", functools.partial(_test_chunks, result))
            for name, data in sorted(result.stack.files.items()):
                files.add(f"{folder}/{name}", functools.partial(dump_json, data))
            for path, blob in sorted(result.stack.assets.items()):
                files.add(f"{folder}/{path}", blob)
        names = sorted({r.stack.name for r in results} | set(kept))
        warnings = {r.stack.name: r.warnings for r in results}
        files.add("manifest.json", dump_json(self._manifest(names, warnings)))
        return files

    def _manifest(self, names: list[str],
                  warnings: dict[str, list[Problem]] | None = None) -> dict[str, Any]:
        stacks = {}
        for name in names:
            stack = self.stack(name)
            stacks[name] = {
                "name": name,
                "constructPath": stack.node.path,
                "workingDirectory": f"stacks/{name}",
                "synthesizedStackPath": f"stacks/{name}/{STACK_FILE}",
                "annotations": [
                    {"constructPath": w.path, "level": "@cdktf/warn", "message": w.message}
                    for w in (warnings or {}).get(name, [])
                ],
                "dependencies": list(self._dependencies.get(name, [])),
            }
        return {"version": MANIFEST_VERSION, "stacks": stacks}


def _schema_sensitive(resource_type: str, attribute: str) -> bool:
    """Whether the pinned provider's committed schema marks the attribute sensitive."""
    pin = PINS.get(resource_type.split("_", 1)[0])
    if pin is None:
        return False
    from edgekit.schema import schema_index  # loaded only when used

    schema = schema_index.load(pin.name, pin.version)
    block = schema.block("resource_schemas", resource_type) if schema is not None else None
    return bool((block or {}).get("attributes", {}).get(attribute, {}).get("sensitive", False))


def _test_chunks(result: StackResult) -> Iterator[Chunk]:
    """The test file in pieces (its ``assert`` blocks a batch at a time)."""
    return json_chunks(_test_for(result), depth=3)


def _test_for(result: StackResult) -> dict[str, Any]:
    aliases: dict[str, list[str]] = {}
    mocked: dict[str, dict[str, dict[str, Any]]] = {}
    seen: set[str] = set()
    for element, _ in rendered_pairs(result.rendered):
        if isinstance(element, Provider) and element.alias:
            aliases.setdefault(element.type, []).append(element.alias)
        if isinstance(element, Resource) and not isinstance(element, DataSource) \
                and element.type not in seen:  # the defaults are per type
            seen.add(element.type)
            provider = provider_name(element.type)
            defaults = {**MOCK_DEFAULTS.get(provider, {}),
                        **MOCK_TYPE_DEFAULTS.get(element.type, {})}
            if defaults:
                mocked.setdefault(provider, {})[element.type] = defaults
    remote: dict[str, list[str]] = {}
    for ref in result.foreign:
        if isinstance(ref, Known):  # a literal: nothing read from remote state
            continue
        remote.setdefault(str(ref.stack), []).append(output_name(ref))
    remote = {k: sorted(set(v)) for k, v in remote.items()}
    encryption = result.stack.encryption
    given = {key for name, data in result.stack.files.items() if name.endswith(".tfvars.json")
             for key in data}
    assertions = sorted(result.assertions, key=attrgetter("path", "name", "condition"))
    return test_document(
        providers=result.providers,
        aliases=aliases,
        variables={k: v for k, v in result.document.get("variable", {}).items()
                   if k not in given},
        passphrase_variable=encryption.passphrase_variable if encryption else None,
        mock_resources=mocked,
        remote_states=remote,
        assertions=LazyList(assertions, TestAssertion.block),  # made while written
    )
