"""Evaluate pure Nix with the real ``nix-instantiate`` (Nix 2.8 from Debian is enough).

`evaluate_compose` applies ``nix/compose.nix`` to JSON arguments: they go to a temporary file
that a small wrapper expression reads with ``builtins.fromJSON (builtins.readFile …)``, and
``nix-instantiate --eval --strict --json`` prints the result. Nothing is built or fetched, no
nixpkgs is needed. A Nix ``throw`` comes back as `NixEvalError` carrying the thrown message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.core.errors import EdgekitError

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE_NIX = ROOT / "nix" / "compose.nix"
"""Where compose.nix is when edgekit runs from its source tree (not in a wheel install)."""
INSTALL_HINT = "apt-get install -y nix-bin  (Debian's Nix 2.8; no daemon needed as root)"
TIMEOUT = 120  # seconds


class NixError(EdgekitError):
    """Nix could not be run, or evaluation failed."""


class NixNotFound(NixError):
    """``nix-instantiate`` is not installed."""


class NixEvalError(NixError):
    """Evaluation failed; `message` is Nix's error (the thrown text for a ``throw``)."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.message = message
        self.stderr = stderr


def nix_instantiate() -> str:
    """Path of ``nix-instantiate`` (``$NIX_INSTANTIATE`` overrides); NixNotFound if absent."""
    found = os.environ.get("NIX_INSTANTIATE") or shutil.which("nix-instantiate")
    if not found:
        raise NixNotFound(f"nix-instantiate not found on PATH; install it: {INSTALL_HINT}")
    return found


_ERROR = re.compile(r"^error:\s*(.*?)(?:\n\s*\n|\Z)", re.S | re.M)


def _message(stderr: str) -> str:
    """The first ``error:`` paragraph of Nix's stderr, on one line."""
    found = _ERROR.search(stderr)
    text = found.group(1) if found else stderr.strip()
    lines = [line.strip() for line in text.splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("(use '--show-trace"))


def _nix_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NIX_CONFIG": "substituters =\nexperimental-features ="}
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired as error:
        raise NixError(f"nix-instantiate timed out after {TIMEOUT}s: {' '.join(argv)}") from error


def evaluate(expression: str, arguments: Mapping[str, Any] | None = None) -> Any:
    """Evaluate `expression` strictly and return its value as JSON data.

    With `arguments`, `expression` must be a function; it is applied to the JSON arguments
    (read from a temporary file). The result is forced completely before it is printed, so
    a ``throw`` anywhere in it leaves no partial output.
    """
    binary = nix_instantiate()
    with tempfile.TemporaryDirectory(prefix="edgekit-nix-") as tmp:
        wrapper = Path(tmp) / "eval.nix"
        body = f"({expression})"
        if arguments is not None:
            data = Path(tmp) / "arguments.json"
            data.write_text(json.dumps(arguments, sort_keys=True))
            body = (f"({expression}) (builtins.fromJSON (builtins.readFile "
                    f"{_nix_string(str(data))}))")
        wrapper.write_text(f"let result = {body}; in builtins.deepSeq result result\n")
        result = _run([binary, "--eval", "--strict", "--json", str(wrapper)])
    if result.returncode != 0:
        raise NixEvalError(_message(result.stderr), result.stderr)
    return json.loads(result.stdout)


def evaluate_file(path: Path, arguments: Mapping[str, Any] | None = None) -> Any:
    """`evaluate` the Nix file at `path` (applied to `arguments` when given)."""
    return evaluate(f"import {_nix_string(str(path.resolve()))}", arguments)


def compose_nix_path(root: Path | None = None) -> Path:
    """The project's ``nix/compose.nix`` (`root`, default the current folder), else the
    one of the source tree edgekit runs from. A wheel install has no source tree: the
    file belongs to the project, beside its ``flake.nix``."""
    for candidate in ((root or Path.cwd()) / "nix" / "compose.nix", COMPOSE_NIX):
        if candidate.is_file():
            return candidate
    raise NixError(f"no nix/compose.nix in {root or Path.cwd()}: run this in the project "
                   "folder (the one with flake.nix and nix/)")


def evaluate_compose(arguments: Mapping[str, Any], *, compose_nix: Path | None = None
                     ) -> dict[str, Any]:
    """``nix/compose.nix`` applied to `arguments` (see `edgekit.nix.compose.nix_arguments`)."""
    compose_nix = compose_nix or compose_nix_path()
    value = evaluate_file(compose_nix, arguments)
    if not isinstance(value, dict):
        raise NixError(f"{compose_nix} returned {type(value).__name__}, expected an attrset")
    return value


def parse(path: Path) -> None:
    """Parse the Nix file at `path` (``nix-instantiate --parse``); NixEvalError if it fails."""
    result = _run([nix_instantiate(), "--parse", str(path)])
    if result.returncode != 0:
        raise NixEvalError(f"{path}: {_message(result.stderr)}", result.stderr)
