"""edgekit works from a wheel: built from the source, installed into a fresh venv, it
synthesizes the project's stacks exactly as the source tree does, exports CUE into the
project (never into the installed package) and finds the project's nix/compose.nix."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from stacks import make_app
from tests.conftest import ROOT

PROJECT_PARTS = ["cdktf.json", "flake.nix", "stacks", "cue", "nix", "services"]


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.tools
def test_a_wheel_in_a_fresh_venv_synthesizes_the_project(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building writes build/ and egg-info beside it
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "edgekit", source / "edgekit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                 tmp_path / "dist", source, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("edgekit-*.whl")

    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                     "--no-index", "-q", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                     cwd=tmp_path).stdout.strip())
    # The dependencies come from the test venv (no network); edgekit itself from the wheel.
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = _run(python, "-c", "import edgekit; print(edgekit.__file__)", cwd=tmp_path)
    assert where.stdout.strip() == str(site / "edgekit" / "__init__.py"), where.stderr
    package_files = sorted((p, p.stat().st_mtime_ns) for p in (site / "edgekit").rglob("*")
                           if "__pycache__" not in p.parts)

    project = tmp_path / "project"
    for part in PROJECT_PARTS:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns(
                "node_modules", "__pycache__", "cdktf.out"))
        else:
            project.mkdir(exist_ok=True)
            shutil.copy(ROOT / part, project / part)
    synth = _run(venv / "bin" / "edgekit", "synth", cwd=project)
    assert synth.returncode == 0, synth.stderr
    assert "synthesized example, bootstrap, zone, prod, staging" in synth.stderr

    # The same files as the source tree writes.
    expected = tmp_path / "expected"
    make_app(outdir=expected).synth()
    written = sorted(p.relative_to(project / "cdktf.out")
                     for p in (project / "cdktf.out").rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(expected) for p in expected.rglob("*")
                             if p.is_file())
    for rel in written:
        assert (project / "cdktf.out" / rel).read_bytes() == (expected / rel).read_bytes(), rel

    # CUE's JSON Schemas went into the project, the installed package is untouched.
    exported = sorted(p.name for p in (project / "cue/export/schema").glob("*.json"))
    assert exported == sorted(p.name for p in (ROOT / "edgekit/schema/cue").glob("*.json"))
    assert sorted((p, p.stat().st_mtime_ns) for p in (site / "edgekit").rglob("*")
                  if "__pycache__" not in p.parts) == package_files

    compose = _run(python, "-c", "from edgekit.nix.evaluate import compose_nix_path; "
                   "print(compose_nix_path())", cwd=project)
    assert compose.stdout.strip() == str(project / "nix" / "compose.nix"), compose.stderr
    elsewhere = _run(python, "-c", "from edgekit.nix.evaluate import compose_nix_path; "
                     "compose_nix_path()", cwd=tmp_path)
    assert "no nix/compose.nix in" in elsewhere.stderr
