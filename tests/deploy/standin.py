"""The documented stand-in for what cannot run here: building and activating a NixOS system.

The deploy agent (edgekit/deploy/agent.py) runs unchanged in the tests; only its `build`
setting points here instead of ``nix build …#nixosConfigurations.<node>…toplevel``, and the
systems it activates are these instead of NixOS's:

``build <flake> <node>``
    Fetches the flake's exact revision with the real Nix (``nix flake metadata
    --no-update-lock-file``: Nix's git fetcher, from the test's git server, refusing any
    lock file change), then makes a "system": the revision's ``services/`` and the node's
    units (``$EDGEKIT_STANDIN_UNITS``: service -> environment, as nix/compose.nix gives the
    node's units), added to the real Nix store (``nix-store --add``). Prints its store path,
    as ``nix build --print-out-paths`` does. The agent then sets the real profile with the
    real ``nix-env`` (``system-N-link``, ``system``), exactly as on a node.

``<system>/bin/switch-to-configuration switch|boot``
    ``switch`` stops the services the node runs (pid files in ``$EDGEKIT_STANDIN_RUN``) and
    starts this system's, each as ``PYTHONPATH=services/lib python services/<svc>/app.py``
    with its unit's environment (what systemd would start); ``boot`` only records the
    generation to boot (``boot-entry``), as the boot loader would. A reboot is the test
    stopping the services and running the profile's ``switch-to-configuration switch``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NIX = ["nix", "--extra-experimental-features", "nix-command flakes"]


def build(flake: str, node: str) -> str:
    source, _, _ = flake.partition("#")
    meta = subprocess.run([*NIX, "flake", "metadata", "--json", "--no-update-lock-file",
                           "--no-registries", source], capture_output=True, text=True,
                          timeout=120)
    if meta.returncode != 0:
        sys.stderr.write(meta.stderr)
        raise SystemExit(meta.returncode)
    info = json.loads(meta.stdout)
    units = json.loads(Path(os.environ["EDGEKIT_STANDIN_UNITS"]).read_text())
    with tempfile.TemporaryDirectory() as scratch:
        system = Path(scratch) / f"nixos-system-{node}"
        shutil.copytree(Path(info["path"]) / "services", system / "services")
        (system / "units.json").write_text(json.dumps(units, sort_keys=True))
        (system / "revision").write_text(info["revision"])
        (system / "bin").mkdir()
        activation = system / "bin" / "switch-to-configuration"
        activation.write_text(f"#!{sys.executable}\n" + Path(__file__).read_text())
        activation.chmod(0o555)
        added = subprocess.run(["nix-store", "--add", str(system)], capture_output=True,
                               text=True, timeout=120)
    if added.returncode != 0:
        sys.stderr.write(added.stderr)
        raise SystemExit(added.returncode)
    return added.stdout.strip()


def stop(run: Path) -> None:
    """Stop every service the node runs (SIGTERM, then SIGKILL), as systemd would."""
    for pidfile in sorted(run.glob("*.pid")):
        pid = int(pidfile.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pidfile.unlink()
            continue
        for _ in range(50):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
        pidfile.unlink()


def activate(system: Path, action: str) -> None:
    run = Path(os.environ["EDGEKIT_STANDIN_RUN"])
    run.mkdir(parents=True, exist_ok=True)
    if action == "boot":
        (run / "boot-entry").write_text(str(system))
        return
    if action != "switch":
        raise SystemExit(f"switch-to-configuration: {action!r} is not supported here")
    stop(run)
    units = json.loads((system / "units.json").read_text())
    for name, env in sorted(units.items()):
        log = (run / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, str(system / "services" / name / "app.py")],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                 "PYTHONPATH": str(system / "services" / "lib"), **env},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=run)
        (run / f"{name}.pid").write_text(str(proc.pid))
    (run / "current-system").write_text(str(system))


if __name__ == "__main__":
    here = Path(sys.argv[0]).resolve()
    if here.name == "switch-to-configuration":
        activate(here.parent.parent, sys.argv[1])
    elif sys.argv[1:2] == ["build"]:
        print(build(sys.argv[2], sys.argv[3]))
    else:
        raise SystemExit("usage: standin.py build <flake> <node>")
