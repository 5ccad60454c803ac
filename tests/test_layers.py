"""The layers point down only (docs/structure/index.md, ADR 0019): the L2 constructs and
the cloud adapters never import the CUE model or the L3 estate wiring; L3 never imports
the user's stacks or the command line."""

from __future__ import annotations

import ast
import subprocess
import sys
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
