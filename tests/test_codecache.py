"""The bytecode cache of attrs' generated methods (ADR 0039): a class built from the cache
is the class attrs compiles, in every process; a bad or missing file costs only time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgekit.core import codecache
from tests.conftest import ROOT

CLASSES = """
import json, linecache, sys
from types import CodeType
import edgekit.core  # installs the cache
import attrs
from attr import _make

@attrs.frozen
class Point:
    x: int
    y: str = "a"

@attrs.define
class Box:
    items: list[int] = attrs.field(factory=list)

def shape(code):
    # everything but the column positions (see codecache._with_constant)
    return [code.co_code.hex(), code.co_names, code.co_varnames, code.co_flags,
            code.co_firstlineno, [shape(c) if isinstance(c, CodeType) else repr(c)
                                  for c in code.co_consts]]

same = True
for cls in (Point, Box):
    for name in ("__init__", "__eq__", "__repr__", "__hash__"):
        method = cls.__dict__.get(name)
        if method is None or not hasattr(method, "__code__"):
            continue
        code = method.__code__
        source = "".join(linecache.cache[code.co_filename][2])
        fresh = compile(source, code.co_filename, "exec", _make.compile.flags, True)
        found = [c for c in fresh.co_consts if isinstance(c, CodeType) and c.co_name == name]
        same = same and shape(found[0]) == shape(code)
cache = _make.compile
print(json.dumps({"compiled": cache.compiled, "same": same,
                  "hash": hash(Point(1)) == hash((hash("<attrs generated hash __main__.Point>"),
                                                   1, "a")),
                  "eq": Point(1) == Point(1, "a") and Point(1) != Point(2),
                  "repr": repr(Point(1)), "box": repr(Box([1]))}))
"""


def _run(tmp_path: Path, seed: str, **env: str) -> dict[str, object]:
    script = tmp_path / "classes.py"
    script.write_text(CLASSES)
    full = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONDONTWRITEBYTECODE", "EDGEKIT_CODE_CACHE")}
    full.update({"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONHASHSEED": seed,
                 "PYTHONPATH": str(ROOT), **env})
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=full, check=True, cwd=tmp_path)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _file(tmp_path: Path) -> Path:
    files = list((tmp_path / "cache" / "edgekit" / "code").glob("attrs-*.marshal"))
    assert len(files) == 1, files
    return files[0]


def test_a_second_process_builds_the_same_classes_from_the_cache(tmp_path: Path) -> None:
    first = _run(tmp_path, "1")
    assert first["compiled"] and first["same"] and first["hash"] and first["eq"]
    second = _run(tmp_path, "2")  # another string hash seed: another __hash__ constant
    assert second["compiled"] == 0  # every class of edgekit and of the script: a hit
    assert second["same"] and second["hash"] and second["eq"]
    assert second["repr"] == first["repr"] == "Point(x=1, y='a')"
    assert second["box"] == "Box(items=[1])"


def test_a_broken_cache_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    _run(tmp_path, "1")
    path = _file(tmp_path)
    path.write_bytes(b"not marshal data")
    again = _run(tmp_path, "3")
    assert again["compiled"] and again["same"] and again["hash"]
    assert _run(tmp_path, "4")["compiled"] == 0


def test_nothing_is_written_when_python_writes_no_bytecode(tmp_path: Path) -> None:
    assert _run(tmp_path, "1", PYTHONDONTWRITEBYTECODE="1")["compiled"]
    assert not (tmp_path / "cache" / "edgekit" / "code").exists()


def test_it_can_be_turned_off(tmp_path: Path) -> None:
    code = ("import edgekit.core\nfrom attr import _make\n"
            "print('compile' in vars(_make))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"EDGEKIT_CODE_CACHE": "0", "XDG_CACHE_HOME": str(tmp_path)})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_processes_writing_at_once_leave_one_whole_file(tmp_path: Path) -> None:
    script = tmp_path / "classes.py"
    script.write_text(CLASSES)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)})
    running = [subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL) for _ in range(4)]
    assert [p.wait() for p in running] == [0] * 4
    assert len(codecache._read(_file(tmp_path))) > 10
    assert not [p for p in _file(tmp_path).parent.iterdir() if p.name.endswith(".tmp")]
    assert _run(tmp_path, "5")["compiled"] == 0


OWN = """
import json
import edgekit  # imports its core first: the cache is in place before attrs loads
import attr
from attr import _make
cache = vars(_make).get("compile")  # none with EDGEKIT_CODE_CACHE=0
print(json.dumps({"compiled": cache and cache.compiled, "flags": cache and cache.flags,
                  "served": sorted(name for name, _ in cache.used
                                   if name.startswith("<attrs generated ") and
                                   (" attr._make." in name or " attr.validators." in name))
                            if cache else [],
                  "hash": hash(attr.Factory("x")), "eq": attr.Factory("x") == attr.Factory("x"),
                  "repr": repr(attr.Factory("x"))}))
"""


def test_the_classes_attrs_defines_for_itself_come_from_the_cache_too(tmp_path: Path) -> None:
    """edgekit imports its core before attrs: ``attr._make`` gets the cache as it loads, so
    attrs' own classes (``Attribute``, ``Factory``, the validators) are not compiled again
    in every process, and behave as compiled (their ``__hash__`` holds this process's
    number, here compared with a process without the cache and the same hash seed)."""
    script = tmp_path / "own.py"
    script.write_text(OWN)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "EDGEKIT_CODE_CACHE")}
    env.update({"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)})

    def run(seed: str, **more: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             env={**env, "PYTHONHASHSEED": seed, **more}, check=True,
                             cwd=tmp_path)
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    first, second = run("1"), run("2")
    assert first["compiled"] > 10 and second["compiled"] == 0
    assert "<attrs generated methods attr.validators._InstanceOfValidator>" in second["served"]
    assert "<attrs generated __hash__ attr._make.Factory>" in second["served"]
    assert first["flags"] == second["flags"] != 0  # attr._make's `from __future__` flags
    fresh = run("2", EDGEKIT_CODE_CACHE="0")
    assert (second["hash"], second["eq"], second["repr"]) == \
        (fresh["hash"], fresh["eq"], fresh["repr"])
    assert second["hash"] != first["hash"]  # another seed: the number was put back
