"""The primary's TLS units as the node evaluation makes them, runnable here.

`primary_tls_units` copies what a node is evaluated from (`estate_copy`), puts the generated
``nix/postgresql/<env>.json`` of the project being tested in it with two paths moved out of
the node's filesystem (its TLS folder, and the logs bucket's endpoint: the local S3 server),
and evaluates the primary with `edgekit.nix.evaluate.evaluate_node` (nix/node.nix over the
vendored NixOS modules, ADR 0023). The unit scripts are the evaluation's, byte for byte; only
the data they were made from names other places (as tests/up_rig.py does for the mesh keys).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from edgekit.constructs.pg_tls import PUBLISH_UNIT, TLS_UNIT, tls_unit
from edgekit.core.writer import dump_json
from edgekit.cue.model import Estate
from edgekit.nix.evaluate import evaluate_node
from tests.conftest import ROOT
from tests.node_harness.scenario import estate_copy


def primary_tls_units(project: Path, dest: Path, env: str, *, tls_dir: Path,
                      endpoint: str) -> dict[str, Any]:
    """The primary's report (`evaluate_node`) with its certificate unit writing into
    `tls_dir` (owned by root: tests run as root) and its publish unit PUTting to
    `endpoint`; `project` is where cue/export and nix/postgresql come from."""
    # The zone and the primary come from this repository's CUE, which every project copy
    # here is a copy of (loading a copy in-process would point the JSON Schemas at it).
    estate = Estate.load(ROOT, env, check_fresh=False)
    primary = estate.env.primary
    assert primary is not None, f"{env} has no self-hosted primary"
    generated = json.loads((project / "nix" / "postgresql" / f"{env}.json").read_text())
    tls = generated["edgekit"]["tls"]
    publish = {k: v for k, v in tls["publish"].items() if k not in ("unit", "file")}
    generated["edgekit"]["tls"] = tls_unit(
        hostnames=[estate.env.zone.origin_hostname("pg")],
        addresses=[generated["settings"]["listen_addresses"]],
        publish={**publish, "endpoint": endpoint}, directory=str(tls_dir), owner="root")
    repo = estate_copy(ROOT, dest, env)
    for folder in ("cue/export", "nix/mesh", "nix/deploy", "nix/pgbackrest", "nix/vector"):
        for source in sorted((project / folder).glob(f"{env}.json")):
            (repo / folder / source.name).write_bytes(source.read_bytes())
    (repo / "nix" / "postgresql" / f"{env}.json").write_bytes(dump_json(generated))
    report = evaluate_node(env, primary, root=repo)
    assert report["failedAssertions"] == [], report["failedAssertions"]
    assert {TLS_UNIT, PUBLISH_UNIT} <= set(report["services"]), sorted(report["services"])
    return report


def run_script(unit: dict[str, Any], access: str, secret: str
               ) -> subprocess.CompletedProcess[str]:
    """`unit`'s script as systemd runs a NixOS unit script (bash -e), with the log sink's
    keys its EnvironmentFile would load."""
    env = {"PATH": os.environ["PATH"], "AWS_ACCESS_KEY_ID": access,
           "AWS_SECRET_ACCESS_KEY": secret}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", unit["script"]], env=env,
                          capture_output=True, text=True, timeout=180)
