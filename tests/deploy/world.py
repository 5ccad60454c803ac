"""The reference estate's prod nodes, each in its namespace, pulling from a real git server
and reporting to SeaweedFS: what the deploy tests run against (tests/deploy/rig.py).

The repository the nodes follow holds the project's services (api, web and their library)
and a flake without inputs; `World.commit` makes revisions of it (a good one, one whose api
fails its health check). Each node's agent gets its generated settings
(`edgekit.deploy.plan.agent_settings`, what nix/deploy.nix writes to the node) with only
what must differ here changed: the repository URL, the S3 endpoint, the paths of the profile
and state, the key file, the build (the stand-in), shorter timeouts, and pg_isready's path
and the throwaway Postgres's socket on the primary. The first switch reads the node's boot
document from the synthesized prod stack, with the secrets and the same two addresses
filled in.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.cue.model import Estate
from edgekit.deploy.plan import agent_settings
from edgekit.deploy.refs import status_key
from edgekit.nix.compose import compose_estate
from edgekit.obs.testing import SeaweedS3
from stacks import make_app
from tests.conftest import ROOT
from tests.deploy.rig import STANDIN, Node, Rig, rig
from tests.gitserver import GitServer, git
from tests.pg_server import PgServer, pg_bin, throwaway_postgres

ENV = "prod"
BUCKET = "edgekit-logs"
FLAKE = '{ description = "deploy test estate"; outputs = { self }: { }; }\n'
AGENT_TIMINGS: dict[str, Any] = {
    "health_timeout": 8, "health_interval": 0.3, "heartbeat": 4, "attempts": 3,
    "backoff": [0.5, 1.0], "timeouts": {"check": 2, "git": 20, "build": 120,
                                        "activate": 60}}


def estate() -> Estate:
    return Estate.load(ROOT, ENV, check_fresh=False)


def units(node: str) -> dict[str, dict[str, str]]:
    """The node's services with their units' environment (nix/compose.nix), without
    Postgres and telemetry: nothing here serves them to the services."""
    composed = compose_estate(estate())[node]["env"]
    return {svc: {**{k: v for k, v in env.items() if not k.startswith("PG")},
                  "OTEL_SDK_DISABLED": "true"} for svc, env in composed.items()}


@attrs.define
class World:
    git: GitServer
    s3: SeaweedS3
    pg: PgServer
    rig: Rig
    repo: str
    work: Path
    revisions: dict[str, str] = attrs.field(factory=dict)

    @property
    def remote(self) -> str:
        return self.git.url(self.repo)

    # -- the repository -------------------------------------------------------------------

    def commit(self, name: str, change: Callable[[Path], object] | None = None) -> str:
        if change is not None:
            change(self.work)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", name, cwd=self.work)
        rev = git("rev-parse", "HEAD", cwd=self.work).strip()
        git("push", "-q", self.remote, f"HEAD:refs/heads/work/{name}", cwd=self.work)
        self.revisions[name] = rev
        return rev

    def move(self, ref: str, rev: str) -> None:
        """Push `rev` to `ref` (the operator's `git push`)."""
        git("push", "-q", "--force", self.remote, f"{rev}:refs/heads/{ref}", cwd=self.work)

    def refs(self) -> dict[str, str]:
        out = git("ls-remote", self.remote, "refs/heads/deploy/*")
        return {line.split("\t")[1].removeprefix("refs/heads/"): line.split("\t")[0]
                for line in out.splitlines()}

    # -- the nodes ------------------------------------------------------------------------

    def settings(self, node: str) -> dict[str, Any]:
        settings = agent_settings(estate())[node]
        home = self.rig.root / node
        keys = home / "vector.env"
        home.mkdir(parents=True, exist_ok=True)
        keys.write_text(f"AWS_ACCESS_KEY_ID={self.s3.access_key}\n"
                        f"AWS_SECRET_ACCESS_KEY={self.s3.secret_key}\n")
        keys.chmod(0o400)
        settings |= {"repository": f"git+{self.remote}",
                     "status": {**settings["status"], "endpoint": self.s3.endpoint},
                     "credentials": str(keys),
                     "build": [sys.executable, str(STANDIN), "build", "{flake}", "{node}"],
                     **AGENT_TIMINGS}
        if "postgresql" in settings["health"]:
            check = settings["health"]["postgresql"]["command"]
            settings["health"]["postgresql"]["command"] = [
                str(pg_bin() / check[0]), f"--host={self.pg.run}", f"--port={self.pg.port}",
                *check[3:]]
        return settings

    def boot_document(self, documents: dict[str, Any], node: str) -> dict[str, Any]:
        """The node's boot.json as cloud-init writes it: the synthesized document with
        OpenTofu's values in place of the secret expressions, and the two addresses."""
        boot: dict[str, Any] = json.loads(json.dumps(
            documents["locals"][f"nodes_{node.replace('-', '_')}_boot"]))
        values = {"log_sink_access_key_id": self.s3.access_key,
                  "log_sink_secret_access_key": self.s3.secret_key}
        boot["secrets"] = {k: values.get(k, f"secret-{k}") for k in boot["secrets"]}
        assert all(not re.search(r"\$\{", v) for v in boot["secrets"].values())
        boot["deploy"]["repository"] = f"git+{self.remote}"
        boot["log_sink"]["endpoint"] = self.s3.endpoint
        return boot

    def first_switch_argv(self, node: Node, documents: dict[str, Any],
                          **timings: Any) -> list[str]:
        """The first-boot unit's command line: the node's boot.json as cloud-init writes
        it, and only the paths, the build and the timings changed (`timings` over ours)."""
        boot = node.home / "boot.json"
        boot.write_text(json.dumps(self.boot_document(documents, node.name)))
        config = node.home / "first-switch.json"
        config.write_text(json.dumps({
            "profile": str(node.profile), "state": str(node.home / "state" / "state.json"),
            "build": [sys.executable, str(STANDIN), "build", "{flake}", "{node}"],
            **AGENT_TIMINGS, **timings}))
        return ["first-switch", "--boot", str(boot), "--config", str(config)]

    def first_switch(self, node: Node, documents: dict[str, Any]) -> str:
        """What the node's first boot does: the agent's first switch, then the reboot."""
        done = node.agent(*self.first_switch_argv(node, documents))
        assert done.returncode == 0, done.stdout + done.stderr
        node.reboot()
        return done.stderr

    def status(self, node: str) -> dict[str, Any] | None:
        client = self.s3.client()
        try:
            body = client.get_object(Bucket=BUCKET, Key=status_key(ENV, node))["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        report: dict[str, Any] = json.loads(body)
        return report

    def reported(self, node: str, rev: str, result: str = "ok") -> dict[str, Any] | None:
        """The node's report once it runs `rev` with that switch result and all healthy."""
        report = self.status(node)
        if report and report["running"] == rev == report["wanted"] and \
                report["switch"]["result"] == result and \
                all(h["ok"] for h in report["health"].values()):
            return report
        return None


# -- fixtures (import them into a test module with `git_server` and conftest's `s3`) ------

@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = make_app(outdir=tmp_path_factory.mktemp("synth") / "out")
    app.disable_schema_check()
    (result,) = app.synth_results([ENV])
    return result.document


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with throwaway_postgres("edgekit-deploy-pg-") as server:
        yield server


@pytest.fixture(scope="module")
def bucket(s3: SeaweedS3) -> SeaweedS3:
    s3.client().create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def world(tmp_path: Path, git_server: GitServer, bucket: SeaweedS3,
          pg: PgServer, request: pytest.FixtureRequest) -> Iterator[World]:
    name = f"estate-{request.node.name[:40]}.git"
    git_server.create(name)
    client = bucket.client()
    for item in client.list_objects_v2(Bucket=BUCKET, Prefix="status/").get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", str(work))
    with rig(tmp_path / "nodes", (git_server.port, int(bucket.endpoint.rsplit(":", 1)[1]))) \
            as nodes:
        made = World(git_server, bucket, pg, nodes, name, work)
        made.commit("v1", seed)
        yield made


def seed(work: Path) -> None:
    """The first revision: the services as they are in this project, and a flake."""
    for name in ("api", "web", "lib"):
        shutil.copytree(ROOT / "services" / name, work / "services" / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.nix"))
    (work / "flake.nix").write_text(FLAKE)


def break_api_health(work: Path) -> None:
    """A revision whose api answers its health check with 503 (a bad release)."""
    app = work / "services" / "api" / "app.py"
    text = app.read_text()
    marker = 'if path == self.config["health_path"] and method == "GET":\n            return ' \
        'self.health()'
    assert marker in text
    app.write_text(text.replace(marker, marker.replace(
        "return self.health()", 'return json_reply(503, {"status": "broken release"})')))


def touch_web(work: Path) -> None:
    """A good change: the web service's documentation text."""
    app = work / "services" / "web" / "app.py"
    app.write_text(app.read_text().replace("Everything here is read-only",
                                           "Everything here is, still, read-only"))
