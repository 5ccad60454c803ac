"""Wall time of ``edgekit synth`` of the reference estate, as a user runs it: a fresh
process each time (interpreter start, imports, CUE freshness check, preflight rules,
render, schema checks, generated files, the atomic swap of ``cdktf.out``).

    .venv/bin/python bench/synth_wall.py [--runs 15] [--compare OTHER_TREE]

Prints min and median wall and process CPU (user + system of the child) over the runs,
after one warm-up run (it also writes the bytecode caches). On a shared machine the
minimum is what the code costs; the median adds what the rest of the machine was doing.
``--compare`` runs another source tree of edgekit (e.g. ``git archive main`` unpacked)
the same way, interleaved run by run, so both see the same load. Runs in a copy of the
project (the working tree's ``cdktf.out`` and generated files are left alone). A
printout, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("cdktf.json", "stacks", "cue", "services", "nix", "flake.nix")


def copy_project(tree: Path, project: Path) -> None:
    project.mkdir()
    for name in COPIED:
        source = tree / name
        if source.is_dir():
            shutil.copytree(source, project / name,
                            ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
        elif source.is_file():
            shutil.copy2(source, project / name)


def timed_run(tree: Path, args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and process CPU (user + system) of ``python <args>`` with `tree`'s edgekit."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)  # this tree's edgekit, whatever the venv installed
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def run_once(tree: Path, project: Path) -> tuple[float, float]:
    return timed_run(tree, ["-c", "from edgekit.cli import main; raise SystemExit("
                            "main(['synth']))"], project)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compare", type=Path, help="another edgekit source tree")
    args = parser.parse_args()
    trees = {"this tree": ROOT}
    if args.compare:
        trees[str(args.compare)] = args.compare.resolve()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        projects = {}
        for n, (name, tree) in enumerate(trees.items()):
            projects[name] = Path(tmp) / f"project-{n}"
            copy_project(tree, projects[name])
        for run in range(args.runs + 1):
            for name, tree in trees.items():
                measured = run_once(tree, projects[name])
                if run:  # the first run writes the bytecode caches
                    times[name].append(measured)
    print(f"edgekit synth (reference estate), {args.runs} runs each, load average now "
          f"{os.getloadavg()[0]:.1f}:")
    for name, runs in times.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(f"  {name}: wall min {min(walls):.3f} s, median {statistics.median(walls):.3f} s;"
              f" process CPU min {min(cpus):.3f} s, median {statistics.median(cpus):.3f} s")


if __name__ == "__main__":
    main()
