"""`edgekit bootstrap`: the first apply of an account (ADR 0007).

Synthesizes the ``bootstrap`` stack (the R2 state bucket; `edgekit.constructs.
account_stacks`), then runs plain OpenTofu in its folder with the local, encrypted state
in the repository's git-ignored ``.edgekit/bootstrap/``:

    tofu init -input=false -backend-config=path=<repo>/.edgekit/bootstrap/terraform.tfstate
    tofu apply                         (asks first; --yes: -auto-approve; --dry-run: validate)

Credentials are checked first, with a message saying what to export; nothing is run
without them. `EDGEKIT_TOFU` names the tofu binary (default: `tofu` on PATH) and
`EDGEKIT_TOFU_PLUGIN_DIR` an offline plugin directory for `tofu init`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.estate.account_stacks import BOOTSTRAP_STATE

PASSPHRASE_MIN = 16
CREDENTIALS = {
    "TF_VAR_cloudflare_api_token":
        "a Cloudflare API token allowed to create R2 buckets in the account "
        "(permission: Account > Workers R2 Storage > Edit)",
    "TF_VAR_state_passphrase":
        f"{PASSPHRASE_MIN}+ characters; encrypts the bootstrap state and every stack's "
        "state (keep it with the team's secrets: without it no state can be read)",
}

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]
Synthesize = Callable[[Sequence[str]], Path]
"""Synthesize these stacks (the project's one synth); returns the output folder."""


class BootstrapError(EdgekitError):
    """The bootstrap cannot start (credentials, tofu) or a tofu step failed."""


def credential_problems(env: Mapping[str, str]) -> list[str]:
    problems = [f"  export {name}=…   # {why}" for name, why in CREDENTIALS.items()
                if not env.get(name)]
    passphrase = env.get("TF_VAR_state_passphrase", "")
    if passphrase and len(passphrase) < PASSPHRASE_MIN:
        problems.append(f"  TF_VAR_state_passphrase has {len(passphrase)} characters; "
                        f"OpenTofu's pbkdf2 key provider needs at least {PASSPHRASE_MIN}")
    return problems


def find_tofu(env: Mapping[str, str]) -> str:
    tofu = env.get("EDGEKIT_TOFU") or shutil.which("tofu")
    if not tofu or not Path(tofu).is_file():
        raise BootstrapError("OpenTofu not found: install tofu (>= 1.10) on PATH or set "
                             "EDGEKIT_TOFU to its path")
    return tofu


def tofu_steps(tofu: str, state: Path, *, plugin_dir: str | None, dry_run: bool,
               auto_approve: bool) -> list[list[str]]:
    init = [tofu, "init", "-input=false", f"-backend-config=path={state}"]
    if plugin_dir:
        init.append(f"-plugin-dir={plugin_dir}")
    if dry_run:
        return [init, [tofu, "validate"]]
    # Without --yes tofu asks before applying (so no -input=false: it would refuse to ask).
    return [init, [tofu, "apply", *(["-input=false", "-auto-approve"] if auto_approve else [])]]


def run_bootstrap(synthesize: Synthesize, root: Path, *, stack: str = "bootstrap",
                  dry_run: bool = False, auto_approve: bool = False,
                  env: Mapping[str, str] | None = None, run: Runner = subprocess.run) -> Path:
    """Synthesize (the project's synth, handed in) and apply the bootstrap stack; returns
    its state file."""
    env = dict(os.environ if env is None else env)
    problems = credential_problems(env)
    if problems:
        raise BootstrapError("the bootstrap needs these set first (nothing was run):\n"
                             + "\n".join(problems))
    tofu = find_tofu(env)
    folder = synthesize([stack]) / "stacks" / stack
    state = (root / BOOTSTRAP_STATE).resolve()
    state.parent.mkdir(parents=True, exist_ok=True)
    state.parent.chmod(0o700)
    steps = tofu_steps(tofu, state, plugin_dir=env.get("EDGEKIT_TOFU_PLUGIN_DIR"),
                       dry_run=dry_run, auto_approve=auto_approve)
    for argv in steps:
        print(f"edgekit: ({folder}) {' '.join(_shown(argv))}", file=sys.stderr)
        done = run(argv, cwd=folder, env=env)
        if done.returncode != 0:
            raise BootstrapError(f"`{' '.join(_shown(argv))}` failed (exit {done.returncode}) "
                                 f"in {folder}; the state, if any, is in {state}")
    return state


def _shown(argv: Sequence[str]) -> list[str]:
    return [Path(argv[0]).name, *argv[1:]]
