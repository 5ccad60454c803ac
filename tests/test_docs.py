"""Documentation that runs: every code block of README.md and docs/, and the example in the
docstring of every public class.

Blocks say what they are: ``python`` runs (in a scratch folder, so what it synthesizes
lands there), ``sh`` lines are checked against the real commands (each ``edgekit``
subcommand and option exists, each ``make`` target, each ``tofu`` subcommand), ``text``
is a picture and is only read.
"""

from __future__ import annotations

import doctest
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edgekit
from tests.conftest import ROOT
from tools.toolpaths import tofu_bin

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(kind: str) -> list[tuple[str, str]]:
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) == kind:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", match.group(2)))
    return found


def test_every_block_says_what_it_is() -> None:
    for path in DOCUMENTS:
        for match in FENCE.finditer(path.read_text()):
            language = match.group(1)
            assert language in ("python", "sh", "text", "mermaid"), (path, match.group(0)[:60])
    assert blocks("python") and blocks("sh")


@pytest.mark.parametrize(("where", "code"), blocks("python"), ids=lambda v: v[:40])
def test_python_blocks_run(where: str, code: str, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__doc__"}
    exec(compile(code, where, "exec"), namespace)
    if "app.synth()" in code:
        assert (tmp_path / "cdktf.out" / "manifest.json").is_file()


def _commands(code: str) -> list[list[str]]:
    out = []
    for raw in code.splitlines():
        line = re.sub(r"\s+#.*$", "", raw).strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"\s+(?:&&|\|)\s+", line):  # `a|b` is notation, not a pipe
            words = shlex.split(part.replace("$(", "(").replace("…", "x"))
            if words and words[0] not in ("cd", "export"):
                out.append(words)
    return out


@pytest.fixture(scope="module")
def tofu_commands() -> str:
    return subprocess.run([tofu_bin(), "-help"], capture_output=True, text=True).stdout


@pytest.mark.tools
@pytest.mark.parametrize(("where", "code"), blocks("sh"), ids=lambda v: v[:40])
def test_shell_blocks_name_real_commands_and_options(where: str, code: str,
                                                     tofu_commands: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    for words in _commands(code):
        program, args = words[0], words[1:]
        if program == "make":
            for target in args:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), (where, target)
        elif program == "tofu":
            assert re.search(rf"^\s+{args[0]}\s", tofu_commands, re.M), (where, words)
        elif program == "edgekit":
            path = []
            for word in args:
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                path.append(word)
            helped = subprocess.run([sys.executable, "-m", "edgekit.cli", *path, "--help"],
                                    capture_output=True, text=True, cwd=ROOT)
            assert helped.returncode == 0, (where, words, helped.stderr)
            for option in (a.split("=")[0] for a in args if a.startswith("--")):
                assert option in helped.stdout, (where, option)
        elif program == "python":  # an app run as cdktf runs it (cdktf.json's "app")
            assert args[:1] == ["-m"] or args[0].endswith(".py"), (where, words)
        else:
            pytest.fail(f"{where}: {program!r} is not a command this runner knows")


def test_public_classes_show_a_call_that_works(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # examples name the project's own files (services/...): a copy, never the checkout
    shutil.copytree(ROOT / "services", tmp_path / "services",
                    ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    monkeypatch.chdir(tmp_path)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    constructs = [n for n in edgekit.__all__ if n in edgekit._LAZY
                  and isinstance(getattr(edgekit, n), type)  # not the Literal types
                  and "constructs" in edgekit._LAZY[n]]
    assert len(constructs) >= 14
    for name in constructs:
        tests = finder.find(getattr(edgekit, name), name, globs={})
        assert tests and tests[0].examples, f"{name} has no example in its docstring"
        for test in tests:
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
