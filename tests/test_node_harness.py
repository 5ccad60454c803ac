"""The node harness on an edge node of prod, from its real evaluation (issue 22): units in
dependency order, each as its own user, in the sandbox its options describe.

The secrets unit (`edgekit-keys`, the evaluated script) writes the boot document's secrets;
the `api` unit's sandbox (ProtectSystem=strict, PrivateTmp, DynamicUser, LoadCredential) is
entered with a probe in place of its program; a missing password file stops the unit with
systemd's message and touches nothing.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.nix.evaluate import evaluate_node
from tests.node_harness.node import NodeRun, UnitFailed, node_namespace, running
from tests.node_harness.units import Unit, start_order, writable

pytestmark = pytest.mark.node

SECRETS = {"pg_password_svc_api_rw": "api-pass'word", "pg_password_svc_web_ro": "web-pass",
           "tunnel_token": "tunnel-token-value", "log_sink_access_key_id": "AKID",
           "log_sink_secret_access_key": "SECRET"}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return evaluate_node("prod", "edge-tokyo")


def test_units_start_after_what_they_need(report: dict[str, Any]) -> None:
    units = {n: Unit.from_report(n, u) for n, u in report["services"].items()}
    order = start_order(units, ["edgekit-api", "edgekit-cloudflared-tunnel-token", "vector"])
    # keys first: before= on edgekit-keys, requires= on cloudflared and vector
    assert order.index("edgekit-keys") < order.index("edgekit-cloudflared-tunnel-token")
    assert order.index("edgekit-keys") < order.index("vector")
    assert order.index("edgekit-keys") < order.index("edgekit-api")
    api = writable(units["edgekit-api"])
    assert api.read_only_root and api.private_tmp and api.paths == ()


@pytest.fixture
def node(tmp_path: Path, report: dict[str, Any]) -> Iterator[NodeRun]:
    with node_namespace("edge") as netns, running(
            NodeRun("edge-tokyo", report, tmp_path / "edge-tokyo", netns)) as run:
        boot = run.path("/etc/edgekit/boot.json")
        boot.parent.mkdir(parents=True, exist_ok=True)
        boot.write_text(json.dumps({"secrets": SECRETS}))
        boot.chmod(0o600)
        yield run


def _mode(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def test_the_keys_unit_writes_each_secret_root_only(node: NodeRun) -> None:
    assert node.start("edgekit-keys") == ["edgekit-keys"]
    password = node.path("/run/keys/edgekit-pg/svc_api_rw")
    assert password.read_text() == SECRETS["pg_password_svc_api_rw"]
    assert _mode(password) == (0o400, 0, 0)
    assert _mode(node.path("/run/keys/edgekit")) == (0o711, 0, 0)
    assert node.path("/run/keys/edgekit/vector.env").read_text() == \
        "AWS_ACCESS_KEY_ID=AKID\nAWS_SECRET_ACCESS_KEY=SECRET\n"


def test_the_api_sandbox_is_what_its_options_say(node: NodeRun) -> None:
    node.start("edgekit-keys")
    api = node.units["edgekit-api"]
    probe = ("/bin/sh -c 'id -u; cat \"$CREDENTIALS_DIRECTORY/pgpassword\"; echo; "
             "touch /etc/probe 2>&1 || true; touch /var/lib/probe 2>&1 || true; "
             "touch /tmp/probe && echo tmp-ok; cat /run/keys/edgekit-pg/svc_api_rw 2>&1 || true'")
    node.run_unit(attrs.evolve(api, type="oneshot", exec_start=(probe,)))
    log = node.journal("edgekit-api").splitlines()
    uid = node.uids["edgekit-api"]
    assert str(uid) in log and uid >= 61184  # a DynamicUser uid, not root
    assert SECRETS["pg_password_svc_api_rw"] in log  # its own credential
    assert "touch: cannot touch '/etc/probe': Read-only file system" in log
    assert "touch: cannot touch '/var/lib/probe': Read-only file system" in log
    assert "tmp-ok" in log and not node.path("/tmp/probe").exists()  # PrivateTmp
    # the key files themselves stay out of reach of the service's user
    assert "cat: /run/keys/edgekit-pg/svc_api_rw: Permission denied" in log
    assert not node.path("/etc/probe").exists()


def test_a_missing_password_file_stops_the_service_and_says_which(node: NodeRun) -> None:
    node.start("edgekit-keys")
    node.path("/run/keys/edgekit-pg/svc_api_rw").unlink()
    before = sorted(str(p) for p in node.root.rglob("*"))
    with pytest.raises(UnitFailed, match="Failed to set up credentials: "
                       "/run/keys/edgekit-pg/svc_api_rw: No such file or directory"):
        node.start("edgekit-api")
    assert "LoadCredential=pgpassword:/run/keys/edgekit-pg/svc_api_rw" in \
        node.journal("edgekit-api")
    assert sorted(str(p) for p in node.root.rglob("*")) == before
    assert os.path.exists(node.path("/run/keys/edgekit-pg/svc_web_ro"))
