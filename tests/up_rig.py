"""The stand-ins `tests/test_up.py` runs `edgekit up` against (README: what is real).

Real: `edgekit up` itself, OpenTofu with the `terraform_data` resources and the S3 backend
on SeaweedFS (signatures checked, state encrypted), git and a git remote (`git
http-backend`), the CUE project and every import, the nodes' `edgekit-mesh-key` unit
(evaluated from nix/mesh.nix at the pushed commit and run with the real `wg` and `curl`), the
primary's `edgekit-pg-tls` and `edgekit-pg-tls-publish` units (evaluated from nix/node.nix
at the pushed commit, run with the real `openssl` and `curl`: its authority goes to the logs
bucket), PostgreSQL of the node's major with a server certificate from that authority.

Stood in for (no cloud or Cloudflare API is reachable here):

* the stacks: `APP` keeps the reference estate's stack names, backends, order (bootstrap →
  zone → prod through `known`) and outputs (`pg_primary_private_ip`, `mesh_endpoints`), with
  `terraform_data` in place of servers and Cloudflare resources. The bootstrap stack's
  bucket is made by a local-exec provisioner in SeaweedFS; the Hyperdrive stand-in exists,
  like the real one, once the primary's address and its authority (`pg_tls_ca`) are
  imported, is gated the same way, and its provisioner fails unless Postgres answers with
  TLS verified against that authority, as Cloudflare refuses to create a Hyperdrive config
  whose database it cannot reach with `verify-full`.
* the nodes: `NodeStandIn` watches the remote's deploy ref as the deploy agent would. Once
  the environment is applied it "boots" every node: each runs its real mesh-key unit, which
  PUTs its key into the logs bucket, and the primary its real TLS units. The primary
  "switches" to the first commit whose nix/mesh/prod.json gives it its peers: it starts
  PostgreSQL and writes its status object (cue/status.cue `#NodeStatus`, dated now, as the
  agent dates it) as the node's deploy agent does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgekit.constructs.pg_tls import PUBLISH_UNIT, TLS_UNIT
from edgekit.nix.evaluate import evaluate
from tests.conftest import ROOT
from tests.gitserver import GitServer, git_in
from tests.pg_ca_units import primary_tls_units, run_script

APP = '''
import os
from pathlib import Path

from edgekit import App, LocalState, Output, Resource, S3State, Stack
from edgekit.core.gates import PRIMARY_UP, add_gate
from edgekit.cue.model import Estate

ROOT = Path(__file__).resolve().parent
PYTHON = os.environ["UP_PYTHON"]
MAKE_BUCKET = (
    "import boto3, os; boto3.client('s3', endpoint_url=os.environ['UP_S3'], "
    "region_name='us-east-1').create_bucket(Bucket=os.environ['UP_BUCKET'])")
PG_ANSWERS = (
    "import os, socket, ssl, sys; p = os.environ['UP_PG_FILE']; "
    "host, port = open(p).read().split() if os.path.exists(p) else sys.exit("
    "'Postgres does not answer: no primary yet'); "
    "s = socket.create_connection((host, int(port)), timeout=5); "
    "s.sendall(bytes([0, 0, 0, 8, 4, 210, 22, 47])); "
    "s.recv(1) == b'S' or sys.exit('Postgres offers no TLS'); "
    "ssl.create_default_context(cadata=os.environ['UP_CA']).wrap_socket("
    "s, server_hostname=host).close()")


def _run(code, **env):
    return [{"local-exec": {"command": f"{PYTHON} -c \\"{code}\\"", "environment": env}}]


def make_app(outdir=None):
    app = App(outdir=outdir)
    estate = Estate.load(ROOT, "prod", check_fresh=False)
    side = estate.env.cloudflare
    bootstrap = Stack(app, "bootstrap", state=LocalState(
        path="../../../.edgekit/bootstrap/terraform.tfstate"))
    Resource(bootstrap, "state-bucket", type="terraform_data",
             config={"input": side.state_bucket}).override(
        "provisioner", _run(MAKE_BUCKET, UP_BUCKET=side.state_bucket))
    bucket = bootstrap.known(side.state_bucket)
    zone = Stack(app, "zone", state=S3State(endpoint=os.environ["UP_S3"], bucket=bucket))
    waf = Resource(zone, "waf", type="terraform_data",
                   config={"input": {"managed": True},
                             "triggers_replace": os.environ.get("UP_GEN", "1")})
    if os.environ.get("UP_ZONE_FAILS"):
        waf.override("provisioner", _run("import sys; sys.exit('the zone API said no')"))
    env = Stack(app, "prod", state=S3State(endpoint=os.environ["UP_S3"], bucket=bucket))
    Resource(env, "nodes", type="terraform_data", config={"input": {
        "zone": zone.known(side.zone_id), "nodes": sorted(estate.env.nodes)}})
    Output(env, "pg_primary_private_ip", value="10.1.0.3")
    Output(env, "mesh_endpoints", value={
        "edge-1": "203.0.113.11", "edge-2": "203.0.113.12", "edge-tokyo": "203.0.113.21",
        "pg-tokyo": "203.0.113.31"})
    ca = estate.env.observed_value("pg_tls_ca")
    if estate.env.observed_value("pg_primary_private_ip") is not None and ca is not None:
        hyperdrive = Resource(env, "hyperdrive", type="terraform_data",
                              config={"input": {"name": "prod-pg", "ca": ca}})
        hyperdrive.override("provisioner", _run(PG_ANSWERS, UP_CA=ca))
        add_gate(PRIMARY_UP, hyperdrive, "Cloudflare tests the connection on create")
    return app
'''

NODES = ("edge-1", "edge-2", "edge-tokyo", "pg-tokyo")
PRIMARY = "pg-tokyo"


def make_project(project: Path, remote: str) -> None:
    """The project copy as a git repository whose `origin` is `remote`."""
    (project / "upapp.py").write_text(APP)
    shutil.copy(ROOT / ".gitignore", project / ".gitignore")
    git_in(project, "init", "--quiet", "--initial-branch=main")
    git_in(project, "add", "-A")
    git_in(project, "commit", "--quiet", "-m", "estate")
    git_in(project, "remote", "add", "origin", remote)


def mesh_unit(entry: dict[str, Any], endpoint: str, key_dir: Path) -> dict[str, Any]:
    """A node's edgekit-mesh-key unit, evaluated from nix/mesh.nix for its entry."""
    entry = {**entry, "privateKeyFile": str(key_dir / "private"),
             "publish": {**entry["publish"], "endpoint": endpoint}}
    return wireguard_config(entry)["systemd"]["services"]["edgekit-mesh-key"]  # type: ignore[no-any-return]


def wireguard_config(entry: dict[str, Any]) -> dict[str, Any]:
    """nix/mesh.nix evaluated for one node's entry as the nodes are (ADR 0023: the vendored
    upstream modules and the stand-ins); its units as the node evaluation reports them."""
    node_eval = json.dumps(str(ROOT / "nix" / "eval" / "estate.nix"))
    config: dict[str, Any] = evaluate(
        f"settings: let e = import {node_eval} {{ }}; ev = e.evalModules [ "
        f"(import {json.dumps(str(ROOT / 'nix' / 'mesh.nix'))} {{ inherit settings; }}) "
        "{ networking.hostName = \"test\"; system.stateVersion = \"25.11\"; } ]; "
        "in { systemd.services = (e.reportOf ev).services; networking.wireguard.interfaces "
        "= builtins.mapAttrs (_: i: { inherit (i) peers ips listenPort; }) "
        "ev.config.networking.wireguard.interfaces; }", entry)
    return config


class NodeStandIn(threading.Thread):
    """The prod nodes as seen from outside: they pull deploy/prod and report back."""

    def __init__(self, git_server: GitServer, repo: str, s3: Any, workdir: Path,
                 pg_file: Path, start_postgres: Any) -> None:
        super().__init__(daemon=True)
        self.git, self.repo, self.s3 = git_server, repo, s3
        self.workdir, self.pg_file = workdir, pg_file
        self.start_postgres = start_postgres
        self.may_switch = threading.Event()
        self.stopped = threading.Event()
        self.booted = False
        self.running: str | None = None
        self.errors: list[str] = []
        self.keys: dict[str, str] = {}
        self.authority = workdir / PRIMARY / "pg-tls"
        """The primary's TLS folder, as its edgekit-pg-tls unit leaves it."""

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                self.step()
            except Exception as err:
                self.errors.append(f"{type(err).__name__}: {err}")
                return

    def step(self) -> None:
        commit = self.git.ref(self.repo, "deploy/prod")
        if commit is None:
            return
        client = self.s3.client()
        if not self.booted:
            listed = client.list_objects_v2(Bucket="edgekit-state", Prefix="prod/")
            if not listed.get("Contents"):
                return  # the environment is not applied yet: no node exists
            self.boot(commit, client)
        mesh = json.loads(self.git.show(self.repo, commit, "nix/mesh/prod.json"))
        peers = mesh["nodes"][PRIMARY]["peers"]
        if self.running == commit or not self.may_switch.is_set():
            return
        if len(peers) != len(NODES) - 1:
            self.status(client, commit, None, "pending", "waiting for peers")
            return
        if self.running is None:
            host, port = self.start_postgres(self.authority)
            self.pg_file.write_text(f"{host} {port}")
        self.running = commit
        self.status(client, commit, commit, "ok", "switched")

    def boot(self, commit: str, client: Any) -> None:
        """First boot of every node: its mesh-key unit publishes its key."""
        mesh = json.loads(self.git.show(self.repo, commit, "nix/mesh/prod.json"))
        for node in NODES:
            key_dir = self.workdir / node
            key_dir.mkdir(parents=True, exist_ok=True)
            made = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True)
            (key_dir / "private").write_text(made.stdout)
            unit = mesh_unit(mesh["nodes"][node], self.s3.endpoint, key_dir)
            env = {"PATH": os.environ["PATH"], "AWS_ACCESS_KEY_ID": self.s3.access_key,
                   "AWS_SECRET_ACCESS_KEY": self.s3.secret_key}
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", unit["script"]], env=env,
                                  capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"{node}: edgekit-mesh-key failed: {done.stderr}")
            self.keys[node] = (key_dir / "public").read_text().strip()
        # the primary's authority and server certificate, made before Postgres, then published
        tree = self.git.archive(self.repo, commit, self.workdir / "at" / commit[:12])
        report = primary_tls_units(tree, self.workdir / "eval" / commit[:12], "prod",
                                   tls_dir=self.authority, endpoint=self.s3.endpoint)
        for name in (TLS_UNIT, PUBLISH_UNIT):
            ran = run_script(report["services"][name], self.s3.access_key,
                             self.s3.secret_key)
            if ran.returncode != 0:
                raise RuntimeError(f"{PRIMARY}: {name} failed: {ran.stdout}{ran.stderr}")
        self.booted = True

    def status(self, client: Any, wanted: str, running: str | None, result: str,
               message: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # `up` judges staleness by
        body = {"schema": "edgekit.status/v1", "env": "prod", "node": PRIMARY,  # the real clock
                "wanted": wanted, "running": running, "generation": 2, "time": now,
                "ref": "deploy/prod",
                "switch": {"result": result, "attempt": 1, "max_attempts": 5,
                           "message": message, "time": now},
                "health": {"postgresql": {"ok": result == "ok", "detail": message}}}
        client.put_object(Bucket="edgekit-logs", Key=f"status/prod/{PRIMARY}.json",
                          Body=json.dumps(body).encode())


@contextlib.contextmanager
def running(node: NodeStandIn) -> Any:
    node.start()
    try:
        yield node
    finally:
        node.stopped.set()
        node.join(timeout=30)


def read_lines(proc: subprocess.Popen[str], until: str, timeout: float) -> list[str]:
    """stderr lines of `proc` until one contains `until` (or the process ends)."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if until in line:
            break
    return lines
