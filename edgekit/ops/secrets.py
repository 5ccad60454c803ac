"""The variables a stack needs from its operator, from the environment or an env file.

Values are kept in memory only: never printed, never written by edgekit. A missing
one is reported by name, for every chosen stack, before any `tofu` runs.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson

from edgekit.ops.tofu import OpsError, Workspace

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (``export`` allowed, shell quoting, ``#`` comments)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise OpsError(f"cannot read env file {path}: {err.strerror}") from err
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise OpsError(f"{path}:{number}: expected KEY=value (the value is not shown)")
        try:
            parts = shlex.split(match.group(2), comments=True)
        except ValueError as err:
            raise OpsError(f"{path}:{number}: {match.group(1)}: {err}") from err
        values[match.group(1)] = " ".join(parts)
    return values


def operator_env(env_file: Path | None) -> tuple[dict[str, str], list[str]]:
    """The environment for tofu, and the values to redact (those from the env file and
    every ``TF_VAR_*``/S3 key)."""
    env = dict(os.environ)
    extra = read_env_file(env_file) if env_file else {}
    env.update(extra)
    secrets = [v for k, v in env.items()
               if k in extra or k.startswith("TF_VAR_") or k in S3_KEYS]
    return env, secrets


def missing_variables(workspace: Workspace, stack: str, env: Mapping[str, str]) -> list[str]:
    """Environment variables `stack` needs that `env` lacks."""
    document = workspace.document(stack)
    given: set[str] = set()
    for path in workspace.stack_dir(stack).glob("*.auto.tfvars.json"):
        given.update(orjson.loads(path.read_bytes()))
    missing = [f"TF_VAR_{name}" for name, spec in sorted(document.get("variable", {}).items())
               if "default" not in spec and name not in given and f"TF_VAR_{name}" not in env]
    backends = [document.get("terraform", {}).get("backend", {})]
    backends += [d.get("config", {}) and {d.get("backend"): d}
                 for d in document.get("data", {}).get("terraform_remote_state", {}).values()]
    if any("s3" in b for b in backends):
        missing += [key for key in S3_KEYS if not env.get(key)]
    return missing


def check_variables(workspace: Workspace, stacks: Sequence[str],
                    env: Mapping[str, str]) -> None:
    lines = [f"  {stack}: {', '.join(names)}" for stack in stacks
             if (names := missing_variables(workspace, stack, env))]
    if lines:
        raise OpsError("missing variables (set them in the environment or in the file "
                       "given with --env-file); nothing was run:\n" + "\n".join(lines))
