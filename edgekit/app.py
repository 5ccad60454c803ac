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

import contextlib
import functools
import os
import sys
import types
from collections import Counter
from collections.abc import Iterator, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import attrs

from edgekit.core.construct import Construct, TestAssertion
from edgekit.core.crossref import explain_foreign_reads, link, stack_order
from edgekit.core.elements import DataSource, Provider, Resource
from edgekit.core.errors import (
    ConstructError,
    EdgekitError,
    OutputError,
    Problem,
    SynthError,
)
from edgekit.core.files import check_owned_output
from edgekit.core.gcpause import freeze_at_exit, gc_paused
from edgekit.core.manifest import MANIFEST, ManifestError, read_manifest
from edgekit.core.refs import Known, output_name
from edgekit.core.stack import LOCAL_STATE_DIR, LocalState, Stack
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
from edgekit.providers.pins import PINS, mock_defaults

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
    foreign: tuple[str, ...] = ()
    """Stacks of the previous output this app does not define, kept as they were."""


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
        self._foreign: dict[str, dict[str, Any]] = {}
        _quiet_uncaught_errors()

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
        freeze_at_exit()  # the process's objects are left to its end, not freed one by one
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
        clean = []  # the rules run over every stack that rendered and checked cleanly
        for result in results:
            found = [*result.problems, *self._state_problems(result.stack)]
            if not found:
                for check in self._all_checks():
                    found.extend(check(result))
            problems.extend(found)
            if not found:
                clean.append(result)
        self.rule_findings = []
        if clean and self._rules:
            from edgekit.check.context import synth_rules  # the rules load only when used

            errors, self.rule_findings = synth_rules(self, clean)
            problems.extend(errors)
        if problems:
            raise SynthError(explain_foreign_reads(problems, everything))
        return results

    def _state_problems(self, stack: Stack) -> list[Problem]:
        state = stack.state
        if not isinstance(state, LocalState) or \
                not state.inside_output(stack.name, str(self.outdir.absolute())):
            return []
        if state.path is None:  # the output folder is where the state goes by default
            fix = (f"write the output elsewhere (--out, CDKTF_OUTDIR: not a folder named "
                   f"{LOCAL_STATE_DIR.split('/')[0]}) or give LocalState a path outside it")
        else:
            fix = (f"leave path out (the state then lives in ../../../{LOCAL_STATE_DIR}/"
                   f"{stack.name}/, beside the output folder) or name a file outside it")
        return [Problem(path=stack.node.path, message=(
            f"LocalState(path={state.path!r}) puts the state inside the output folder "
            f"{self.outdir}, which every synth replaces: the state would be lost. {fix[0].upper()}"
            f"{fix[1:]}"))]

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
                             len(files), warnings, suppressed, tuple(sorted(self._foreign)))
        return report, files, {f"stacks/{n}": p for n, p in kept.items()}

    def synth(self, only: Sequence[str] | None = None) -> SynthReport:
        """Synthesize and write atomically. On any problem nothing is written: the error
        lists every problem of every stack, and a program that does not catch it
        (``python my_app.py``) prints that list and exits 1, without a traceback.

        Run by ``edgekit synth --app my_app.py``, the app is handed to the command instead,
        which synthesizes it the way it does every app (`edgekit.project`)."""
        if _CAPTURED is not None:
            _CAPTURED.append(self)
            raise _HandedOver
        check_owned_output(self.outdir.absolute())
        report, files, keep = self.prepare(only)
        write_tree(self.outdir, files, keep)
        return report

    def _kept(self, only: Sequence[str] | None) -> dict[str, Path]:
        """Folders of stacks not synthesized this time, carried over unchanged: the app's
        stacks `only` leaves out, and the stacks of the previous output this app does not
        define (another app's; a synth never deletes them, ADR 0027)."""
        kept = {}
        for stack in self.stacks:
            folder = self.outdir / "stacks" / stack.name
            if only and stack.name not in only and (folder / STACK_FILE).is_file():
                kept[stack.name] = folder
        self._foreign = {}
        if (self.outdir / MANIFEST).is_file():
            defined = {stack.name for stack in self.stacks}
            try:
                previous = read_manifest(self.outdir)
            except ManifestError as err:  # its stacks cannot be told apart: keep, not guess
                raise OutputError(f"{err.fault}; the previous output's "
                                  "stacks cannot be kept: fix the manifest or delete "
                                  f"{self.outdir}, then synth again") from err
            for name, entry in previous.stacks.items():
                folder = self.outdir / "stacks" / name
                if name not in defined and (folder / STACK_FILE).is_file():
                    kept[name] = folder
                    self._foreign[name] = entry
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
        files.add(MANIFEST, dump_json(self._manifest(names, warnings)))
        return files

    def _manifest(self, names: list[str],
                  warnings: dict[str, list[Problem]] | None = None) -> dict[str, Any]:
        stacks = {}
        for name in names:
            if name in self._foreign:  # another app's stack: its entry as that app wrote it
                entry = self._foreign[name]
                stacks[name] = {**entry, "dependencies": [
                    d for d in entry.get("dependencies", []) if d in names]}
                continue
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


_CAPTURED: list[App] | None = None


class _HandedOver(BaseException):
    """Stops a program at ``app.synth()`` once its app is handed to the command (a
    BaseException: the program's own ``except Exception`` does not swallow it)."""


@contextlib.contextmanager
def capture_synth() -> Iterator[list[App]]:
    """While active, ``App.synth()`` records its app (and stops the program there)
    instead of writing: how ``--app path/app.py`` gets the app a program builds."""
    global _CAPTURED
    saved, _CAPTURED = _CAPTURED, []
    captured = _CAPTURED
    try:
        yield captured
    except _HandedOver:
        pass
    finally:
        _CAPTURED = saved


def _quiet_uncaught_errors() -> None:
    """An `EdgekitError` nobody catches ends the program with its message (the located
    problem list) and exit status 1, not a traceback: it is the user's input that is
    wrong, not edgekit. Any other exception keeps Python's own report."""
    previous = sys.excepthook
    if getattr(previous, "edgekit", False):
        return

    def hook(kind: type[BaseException], value: BaseException,
             tb: types.TracebackType | None) -> None:
        if isinstance(value, EdgekitError):
            print(f"edgekit: {value}", file=sys.stderr)
        else:
            previous(kind, value, tb)

    hook.edgekit = True  # type: ignore[attr-defined]
    sys.excepthook = hook


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
            defaults = mock_defaults(element.type)
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
