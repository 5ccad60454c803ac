"""Evaluate Nix with the real ``nix-instantiate`` (Nix 2.8 from Debian is enough).

`evaluate_compose` applies ``nix/compose.nix`` to JSON arguments: they go to a temporary file
that a small wrapper expression reads with ``builtins.fromJSON (builtins.readFile …)``, and
``nix-instantiate --eval --strict --json`` prints the result. Nothing is built or fetched, no
nixpkgs is needed. A Nix ``throw`` comes back as `NixEvalError` carrying the thrown message.

Node evaluation (issue 21, ADR 0023) — a STABLE interface other code builds on:

``evaluate_node(env, node, root=None) -> dict`` and ``evaluate_nodes(root=None) -> {node: dict}``
evaluate the repository's own ``flake.nix`` (``nix/eval/estate.nix``): each node's
``nixosConfigurations.<node>`` is ``lib.evalModules`` over the vendored upstream NixOS modules
(``nix/upstream/``, pinned in ``nix/upstream/pin.json``), the declared stand-ins
(``nix/eval/standins.nix``) and the project's modules, with the ``pkgs`` stand-in
(``nix/stubs.nix``). The report of one node (``nix/eval/report.nix``) has these keys:

- ``name``, ``env``, ``hostName``, ``stateVersion``
- ``failedAssertions``: messages of the failed ``assertions``; ``warnings``: list of str
- ``services``: unit name (without ``.service``) -> ``{description, after, before, requires,
  wants, wantedBy, requiredBy, partOf, bindsTo, serviceConfig, unitConfig, environment,
  path, script, preStart, postStart, reload, preStop, postStop, scripts, unitText}``:
  ``serviceConfig`` as evaluated (``ExecStart``/``ExecStartPre``/``User``/``Group``/sandbox
  options; derivations as store paths), ``environment`` includes ``PATH`` from ``path``;
  ``path`` is ``[{name, store}]``; ``scripts`` maps ``preStart``/``script``/... to
  ``{path, file}``: the store path the unit runs and the file's whole content (shebang
  included) for a harness to materialize; ``unitText`` is the ``[Unit]``/``[Service]``/
  ``[Install]`` text of the vendored ``serviceToUnit``
- ``targets``: name -> ``{description, after, before, requires, wants, wantedBy, requiredBy,
  partOf, unitConfig}``; ``timers``: name -> ``{wantedBy, timerConfig, unitText}``
- ``tmpfiles``: ``systemd.tmpfiles.rules``
- ``etc``: name -> ``{target, text, source, mode, user, group}`` (``environment.etc``)
- ``users``, ``groups``: ``users.users`` (``{name, uid, group, extraGroups, description,
  home, createHome, isSystemUser, isNormalUser, shell}``) / ``users.groups`` (``{name, gid,
  members}``) as upstream's users-groups.nix evaluates them
- ``fileSystems``: mount point -> ``{device, fsType, options, mountPoint}``
- ``postgresql``: ``None`` or ``{package: {name, version, major}, finalPackage, dataDir,
  settings, authentication, identMap, ensureDatabases, ensureUsers, enableTCPIP}``
- ``autoUpgrade``: ``system.autoUpgrade``; ``networking``: ``{hostName, firewall,
  wireguard}``; ``vector``: ``services.vector`` (``package`` a store path, ``version``,
  ``settings``); ``edgekit``: ``services.edgekit`` (the glued services' options)
- ``standins``: what is a stand-in and why; ``sinkDefinitions``: our own definitions of
  options only vendored modules may write (must be empty)

An evaluation error (an undeclared option, a failed type check, a ``throw``) raises
`NixEvalError` with Nix's message.
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
NODE_EVAL = Path("nix") / "eval" / "estate.nix"
"""The node evaluation's entry point, relative to the project root."""
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


def _project_root(root: Path | None) -> Path:
    found = (root or Path.cwd()).resolve()
    if not (found / NODE_EVAL).is_file():
        found = ROOT
    if not (found / NODE_EVAL).is_file():
        raise NixError(f"no {NODE_EVAL} in {root or Path.cwd()}: run this in the project folder")
    return found


def evaluate_nodes(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every node's report (see the module docstring), from one ``nix-instantiate``."""
    project = _project_root(root)
    entry = _nix_string(str(project / NODE_EVAL))
    value = evaluate(f"(import {entry} {{ repo = {_nix_string(str(project))}; }}).reports")
    if not isinstance(value, dict):
        raise NixError(f"{NODE_EVAL} returned {type(value).__name__}, expected an attrset")
    return value


def evaluate_node(env: str, node: str, root: Path | None = None) -> dict[str, Any]:
    """The report of `node` of environment `env` (see the module docstring)."""
    project = _project_root(root)
    entry = _nix_string(str(project / NODE_EVAL))
    names = evaluate(f"builtins.mapAttrs (_: n: n.env) (import "
                     f"{_nix_string(str(project / 'nix' / 'estate.nix'))} {{ }})")
    if names.get(node) != env:
        known = ", ".join(sorted(n for n, e in names.items() if e == env)) or "none"
        raise NixError(f"environment {env!r} has no node {node!r} (its nodes: {known})")
    value = evaluate(f"(import {entry} {{ repo = {_nix_string(str(project))}; }})"
                     f".reports.{_nix_string(node)}")
    if not isinstance(value, dict):
        raise NixError(f"{NODE_EVAL} returned {type(value).__name__} for {node}, "
                       "expected an attrset")
    return value
