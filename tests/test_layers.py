"""The layers point down only (docs/structure/index.md, ADR 0019): the L2 constructs and
the cloud adapters never import the CUE model or the L3 estate wiring; L3 never imports
the user's stacks or the command line; and across the whole package (issue 23) every
import points to the same floor or one below (`FLOORS`), with no import cycle."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.conftest import ROOT

L2_FOLDERS = ("edgekit/constructs", "edgekit/clouds")
ABOVE_L2 = ("edgekit.cue", "edgekit.estate", "edgekit.nix", "edgekit.generated",
            "edgekit.project", "edgekit.cli", "edgekit.app", "stacks")
"""What an L2 construct (or a cloud adapter below it) may not import: the CUE adapter,
the L3 wiring and everything above it."""
ABOVE_L3 = ("edgekit.cli", "edgekit.project", "stacks")


def imported(source: str, module: str) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, relative ones resolved against
    `module`, including those inside functions and ``if TYPE_CHECKING:``."""
    found = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def violations(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for line, name in imported(path.read_text(), module):
                if any(name == f or name.startswith(f"{f}.") for f in forbidden):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return sorted(set(bad))


def test_l2_constructs_never_import_the_cue_model_or_l3() -> None:
    assert violations(L2_FOLDERS, ABOVE_L2) == []


def test_l3_never_imports_the_stacks_or_the_command_line() -> None:
    assert violations(("edgekit/estate",), ABOVE_L3) == []


def test_importing_every_l2_module_loads_no_cue_and_no_l3() -> None:
    """Transitively too: no module an L2 construct imports pulls the CUE model in."""
    code = ("import importlib, pkgutil, sys\n"
            "for folder in ('edgekit.constructs', 'edgekit.clouds'):\n"
            "    try:\n"
            "        package = importlib.import_module(folder)\n"
            "    except ModuleNotFoundError:\n"
            "        continue\n"
            "    for info in pkgutil.iter_modules(package.__path__):\n"
            "        importlib.import_module(f'{folder}.{info.name}')\n"
            "print(sorted(m for m in sys.modules if m.startswith(('edgekit.cue', "
            "'edgekit.estate', 'edgekit.nix', 'stacks'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("line", [
    "from edgekit.cue.model import Env",
    "import edgekit.estate.patterns",
    "from edgekit.estate import patterns",
    "from ..estate.mesh_plan import mesh_plan",
    "def f():\n    from edgekit.cue import model",
])
def test_the_check_catches_an_upward_import(line: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The layering check can fail: an upward import in a construct module is named."""
    folder = tmp_path / "edgekit/constructs"
    folder.mkdir(parents=True)
    (folder / "bad.py").write_text(f"from __future__ import annotations\n{line}\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = violations(("edgekit/constructs",), ABOVE_L2)
    assert len(found) >= 1 and found[0].startswith("edgekit/constructs/bad.py:")


# -- the whole package: floors and cycles ----------------------------------------------------

FLOORS: dict[str, int] = {
    "edgekit.core": 0,  # the engine
    "edgekit.schema": 1, "edgekit.bindings": 1,  # provider schemas, L1
    "edgekit.obs": 1,  # the log contract, the Vector settings, the logs' read side
    # the node's deploy agent (stdlib only, shipped in the user data), its refs and reports
    "edgekit.deploy.agent": 1, "edgekit.deploy.refs": 1, "edgekit.deploy.reports": 1,
    "edgekit.deploy.waves": 1,
    "edgekit.clouds": 2,  # cloud adapters
    "edgekit.providers": 3,  # pins: the providers' own and every cloud's
    "edgekit.constructs": 4,  # L2
    "edgekit.check": 5,  # the rules: over documents and layouts, never the CUE model
    "edgekit.cue": 6,  # the CUE adapter: model and layout of the estate
    "edgekit.pg": 7, "edgekit.nix": 7,  # adapters over the estate's values
    "edgekit.deploy": 7,  # rollouts over the estate's nodes and refs
    "edgekit.estate": 8,  # L3
    "edgekit.app": 9,
    "edgekit": 10,  # the public surface, edgekit/__init__.py (this module only)
    "edgekit.generated": 11, "edgekit.project": 11, "edgekit.bootstrap": 11,
    "edgekit.testing": 11,
    # the commands
    "edgekit.ops": 12, "edgekit.check.command": 12, "edgekit.obs.cli": 12,
    "edgekit.pg.cli": 12, "edgekit.cue.mesh_cli": 12, "edgekit.deploy.cli": 12,
    "edgekit.cli": 13,
}
"""Module (or package) → floor; a module takes the floor of its longest prefix here."""
ALLOWED: set[tuple[str, str]] = set()
"""Upward imports known and being removed, each with the branch that removes it (none)."""


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted((root / "edgekit").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


@functools.cache
def graph(root: Path) -> dict[str, set[str]]:
    """Module → the edgekit modules it imports (anywhere in it, TYPE_CHECKING included)."""
    known = modules(root)
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for _, target in imported(path.read_text(), f"{package}.x"):
            while target and target not in known:  # a name inside a module → the module
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name and target.startswith("edgekit"):
                edges[name].add(target)
    return edges


def floor_of(module: str) -> int:
    if module == "edgekit":
        return FLOORS["edgekit"]
    prefixes = [p for p in FLOORS if p != "edgekit" and (module == p or
                                                          module.startswith(f"{p}."))]
    if not prefixes:
        raise AssertionError(f"{module} has no floor: add it to FLOORS")
    return FLOORS[max(prefixes, key=len)]


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{source} (floor {floor_of(source)}) imports {target} (floor "
                  f"{floor_of(target)})" for source, targets in edges.items()
                  for target in targets
                  if floor_of(target) > floor_of(source) and (source, target) not in ALLOWED)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def without(edges: dict[str, set[str]], pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    skip = set(pairs)
    return {s: {t for t in ts if (s, t) not in skip} for s, ts in edges.items()}


def test_every_import_points_down_or_across() -> None:
    assert upward(graph(ROOT)) == []


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(without(graph(ROOT), ALLOWED)) == []


def test_each_allowance_is_still_needed() -> None:
    """An allowance whose import is gone must go too (the coordinator deletes it)."""
    edges = graph(ROOT)
    assert [pair for pair in sorted(ALLOWED) if pair[1] not in edges.get(pair[0], ())] == []


@pytest.mark.parametrize(("source", "line", "expected"), [
    ("edgekit/constructs/bad.py", "from edgekit.pg.backup import settings_for",
     ["edgekit.constructs.bad (floor 4) imports edgekit.pg.backup (floor 7)"]),
    ("edgekit/check/bad.py", "def f():\n    from edgekit.cue import model",
     ["edgekit.check.bad (floor 5) imports edgekit.cue (floor 6)",
      "edgekit.check.bad (floor 5) imports edgekit.cue.model (floor 6)"]),
])
def test_the_floor_check_can_fail(source: str, line: str, expected: list[str],
                                  tmp_path: Path) -> None:
    for folder in ("constructs", "check", "pg", "cue"):
        (tmp_path / "edgekit" / folder).mkdir(parents=True)
        (tmp_path / "edgekit" / folder / "__init__.py").write_text("")
    (tmp_path / "edgekit/pg/backup.py").write_text("")
    (tmp_path / "edgekit/cue/model.py").write_text("")
    (tmp_path / source).write_text(f"from __future__ import annotations\n{line}\n")
    assert upward(graph(tmp_path)) == expected


def test_the_cycle_check_can_fail() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def private_imports(root: Path) -> list[str]:
    """``from edgekit.<a>… import _name`` in a module of another package <b>: a private
    helper one package reaches into another for (make it public, in one place)."""
    found = []
    for module, path in sorted(modules(root).items()):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or \
                    not (node.module or "").startswith("edgekit."):
                continue
            if str(node.module).split(".")[:2] == module.split(".")[:2]:
                continue
            found += [f"{module} imports {node.module}.{alias.name}" for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_no_package_imports_another_packages_private_names() -> None:
    assert private_imports(ROOT) == []


def test_the_private_import_check_can_fail(tmp_path: Path) -> None:
    for folder in ("obs", "deploy"):
        (tmp_path / "edgekit" / folder).mkdir(parents=True)
        (tmp_path / "edgekit" / folder / "__init__.py").write_text("")
    (tmp_path / "edgekit/obs/sync.py").write_text("def _refused(): ...\n")
    (tmp_path / "edgekit/deploy/reports.py").write_text(
        "def f():\n    from edgekit.obs.sync import _refused\n")
    assert private_imports(tmp_path) == [
        "edgekit.deploy.reports imports edgekit.obs.sync._refused"]
