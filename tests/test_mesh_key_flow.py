"""WireGuard public keys reach CUE without copy-paste (ADR 0010): the node's unit, evaluated
from nix/mesh.nix with Debian's nix, runs with the real `wg` and `curl` and PUTs the key
(SigV4) into a real S3 server that checks signatures (SeaweedFS); `edgekit mesh import-keys`
reads it back into cue/outputs/<env>.mesh.cue, re-exports and regenerates the peers.
Trust on first use: a changed key needs --rekey."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgekit.cue.mesh_keys import MeshKeysError, object_key, plan_keys, render_cue
from edgekit.nix.evaluate import INSTALL_HINT
from edgekit.obs.testing import SeaweedS3
from tests.conftest import ROOT, RunCli, tree_of

A = "Zm9vYmFyIGZvb2JhciBmb29iYXIgZm9vYmFyIGZvb2I="
B = "cGctdG9reW8tcHVibGljLWtleS0wMTIzNDU2Nzg5YWI="
C = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28="
MESH = ("edge-1", "edge-2", "edge-tokyo", "pg-tokyo")


# -- what changes (pure) ----------------------------------------------------------------------

def test_first_keys_are_taken_and_nodes_without_one_are_listed() -> None:
    plan = plan_keys("prod", MESH, {}, {"edge-1": A, "pg-tokyo": B, "gone": C})
    assert plan.keys == {"edge-1": A, "pg-tokyo": B}
    assert plan.added == ("edge-1", "pg-tokyo")
    assert plan.not_in_mesh == ("gone",) and plan.missing == ("edge-2", "edge-tokyo")


def test_a_changed_key_is_refused_unless_the_node_is_named() -> None:
    with pytest.raises(MeshKeysError, match=r"edge-1 \(in CUE Zm9v.*, published aGVs.*--rekey"):
        plan_keys("prod", MESH, {"edge-1": A}, {"edge-1": C})
    plan = plan_keys("prod", MESH, {"edge-1": A, "pg-tokyo": B}, {"edge-1": C, "pg-tokyo": B},
                     rekey=["edge-1"])
    assert plan.keys == {"edge-1": C, "pg-tokyo": B} and plan.rekeyed == ("edge-1",)
    assert plan.added == ()


def test_rekey_must_name_a_mesh_node_with_a_new_key() -> None:
    with pytest.raises(MeshKeysError, match="--rekey nope: not mesh nodes of stack 'prod'"):
        plan_keys("prod", MESH, {}, {}, rekey=["nope"])
    with pytest.raises(MeshKeysError, match="--rekey edge-1: no new key published"):
        plan_keys("prod", MESH, {"edge-1": A}, {"edge-1": A}, rekey=["edge-1"])


def test_keys_of_nodes_that_left_the_mesh_are_dropped() -> None:
    plan = plan_keys("prod", ("edge-1",), {"edge-1": A, "old": B}, {})
    assert plan.keys == {"edge-1": A} and plan.dropped == ("old",)


def test_rendered_cue_holds_only_public_keys() -> None:
    assert render_cue("prod", {"pg-tokyo": B, "edge-1": A}).endswith(
        'package outputs\n\nmesh_keys: "prod": {\n'
        f'\t"edge-1": "{A}",\n\t"pg-tokyo": "{B}"\n}}\n')


# -- end to end -------------------------------------------------------------------------------

@pytest.fixture
def s3(logs_s3: SeaweedS3) -> SeaweedS3:
    return logs_s3


def _tools() -> None:
    for tool in ("wg", "curl", "nix-instantiate"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; `make system-deps` installs it "
                        f"(nix: {INSTALL_HINT})")


def _unit(project: Path, node: str, endpoint: str, key_dir: Path) -> dict[str, Any]:
    """The node's edgekit-mesh-key unit as nix/mesh.nix makes it from the generated
    nix/mesh/prod.json, with the key file in `key_dir` and the bucket at `endpoint`."""
    entry = json.loads((project / "nix" / "mesh" / "prod.json").read_text())["nodes"][node]
    assert entry["publish"]["key"] == object_key("prod", node)
    entry["privateKeyFile"] = str(key_dir / "private")
    entry["publish"] = {**entry["publish"], "endpoint": endpoint}
    from tests.test_nix import evaluate_modules
    config = evaluate_modules(
        f"[ (import {json.dumps(str(ROOT / 'nix' / 'mesh.nix'))} {{ settings = args; }}) ]",
        "{ inherit (r) services timers; }", entry)
    unit: dict[str, Any] = config["services"]["edgekit-mesh-key"]
    assert config["timers"]["edgekit-mesh-key"]["timerConfig"]["OnCalendar"] == "daily"
    return unit


def _boot(unit: dict[str, Any], key_dir: Path, access: str, secret: str
          ) -> subprocess.CompletedProcess[str]:
    """First boot of a node: WireGuard makes the private key (as generatePrivateKeyFile
    does, with `wg genkey`), then the unit runs with the credentials systemd would load."""
    key_dir.mkdir(parents=True, exist_ok=True)
    private = key_dir / "private"
    if not private.exists():
        made = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True)
        private.write_text(made.stdout)
        private.chmod(0o600)
    assert unit["serviceConfig"]["EnvironmentFile"] == "/run/keys/edgekit/vector.env"
    env = {"PATH": os.environ["PATH"], "AWS_ACCESS_KEY_ID": access,
           "AWS_SECRET_ACCESS_KEY": secret}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", unit["script"]], env=env,
                          capture_output=True, text=True, timeout=120)


def _pubkey(key_dir: Path) -> str:
    return subprocess.run(["wg", "pubkey"], input=(key_dir / "private").read_text(),
                          capture_output=True, text=True, check=True).stdout.strip()


def test_keys_made_on_nodes_reach_cue_and_the_peers(tmp_path: Path, project_copy: Path,
                                                    cli: RunCli, s3: SeaweedS3) -> None:
    _tools()
    creds = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}

    def import_keys(*extra: str) -> subprocess.CompletedProcess[str]:
        return cli("mesh", "import-keys", "--stack", "prod", "--endpoint", s3.endpoint,
                   *extra, env=creds)

    before = tree_of(project_copy)
    nothing = import_keys()
    assert nothing.returncode == 1
    assert "no key published under s3://edgekit-logs/mesh/prod/ yet" in nothing.stderr
    assert tree_of(project_copy) == before

    # endpoints arrive through `edgekit outputs import` as before
    endpoints = {"edge-1": "203.0.113.11", "edge-2": "203.0.113.12",
                 "edge-tokyo": "203.0.113.21", "pg-tokyo": "203.0.113.31"}
    done = cli("outputs", "import", "--stack", "prod", stdin=json.dumps({"mesh_endpoints": {
        "sensitive": False, "type": ["object", {}], "value": endpoints}}))
    assert done.returncode == 0, done.stderr

    keys = {node: tmp_path / "nodes" / node for node in ("edge-1", "pg-tokyo")}
    units = {node: _unit(project_copy, node, s3.endpoint, folder)
             for node, folder in keys.items()}
    for node, folder in keys.items():
        booted = _boot(units[node], folder, s3.access_key, s3.secret_key)
        assert booted.returncode == 0, booted.stderr
        assert (folder / "public").read_text().strip() == _pubkey(folder)
    # the keys never reach curl's command line: they go in on stdin
    assert "--config -" in units["edge-1"]["script"]
    assert "AWS_SECRET_ACCESS_KEY" not in units["edge-1"]["script"].split("curl")[1]

    done = import_keys()
    assert done.returncode == 0, done.stderr
    assert "edge-1: new key" in done.stderr and "pg-tokyo: new key" in done.stderr
    assert "no key yet for edge-2" in done.stderr
    assert "regenerated nix/mesh/prod.json" in done.stderr
    published = {node: _pubkey(folder) for node, folder in keys.items()}
    export = json.loads((project_copy / "cue" / "export" / "prod.json").read_text())
    assert export["env"]["mesh"]["public_keys"] == published
    mesh = json.loads((project_copy / "nix" / "mesh" / "prod.json").read_text())
    (peer,) = mesh["nodes"]["edge-1"]["peers"]
    assert peer["name"] == "pg-tokyo" and peer["publicKey"] == published["pg-tokyo"]
    assert peer["endpoint"] == "203.0.113.31:51820"
    assert [p["name"] for p in mesh["nodes"]["edge-tokyo"]["peers"]] == ["edge-1", "pg-tokyo"]
    generated = (project_copy / "cue" / "outputs" / "prod.mesh.cue").read_text()
    assert all(key in generated for key in published.values())
    # no private key anywhere: not in the project, not in the bucket
    private = [(folder / "private").read_text().strip() for folder in keys.values()]
    client = s3.client()
    objects = [client.get_object(Bucket="edgekit-logs", Key=o["Key"])["Body"].read()
               for o in client.list_objects_v2(Bucket="edgekit-logs")["Contents"]]
    everything = b"".join([*tree_of(project_copy).values(), *objects])
    assert all(p.encode() not in everything for p in private)

    before = tree_of(project_copy)
    again = import_keys()
    assert again.returncode == 0 and "no new mesh key" in again.stderr
    assert tree_of(project_copy) == before

    # edge-1 is rebuilt: a new private key, published over the old object
    (keys["edge-1"] / "private").unlink()
    assert _boot(units["edge-1"], keys["edge-1"], s3.access_key, s3.secret_key).returncode == 0
    refused = import_keys()
    assert refused.returncode == 1
    assert "edge-1 (in CUE" in refused.stderr and "--rekey NODE" in refused.stderr
    assert tree_of(project_copy) == before
    accepted = import_keys("--rekey", "edge-1")
    assert accepted.returncode == 0, accepted.stderr
    assert "edge-1: new key (--rekey)" in accepted.stderr
    export = json.loads((project_copy / "cue" / "export" / "prod.json").read_text())
    assert export["env"]["mesh"]["public_keys"]["edge-1"] == _pubkey(keys["edge-1"])

    # an object that is not a key is reported and changes nothing else
    client.put_object(Bucket="edgekit-logs", Key=object_key("prod", "edge-2"), Body=b"nope\n")
    odd = import_keys()
    assert odd.returncode == 1
    assert "ignored s3://edgekit-logs/mesh/prod/edge-2.pub: 'nope' is not a WireGuard" \
        in odd.stderr
    assert "edge-2" not in json.loads((project_copy / "cue" / "export" / "prod.json")
                                      .read_text())["env"]["mesh"]["public_keys"]


def test_wrong_keys_are_refused_on_both_sides(tmp_path: Path, project_copy: Path, cli: RunCli,
                                              s3: SeaweedS3) -> None:
    _tools()
    folder = tmp_path / "nodes" / "edge-1"
    unit = _unit(project_copy, "edge-1", s3.endpoint, folder)
    booted = _boot(unit, folder, s3.access_key, "not-the-secret")
    assert booted.returncode != 0 and "403" in booted.stderr
    assert "Contents" not in s3.client().list_objects_v2(Bucket="edgekit-logs")
    done = cli("mesh", "import-keys", "--stack", "prod", "--endpoint", s3.endpoint,
               env={"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert done.returncode == 1 and "credentials were refused" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_put_carries_the_body_hash_and_no_key_on_the_command_line(
        tmp_path: Path, project_copy: Path) -> None:
    """What an S3 server that checks more than SeaweedFS (R2, AWS) needs: the body's sha256
    as a signed x-amz-content-sha256; and the secret never in curl's argv (read from
    /proc/<pid>/cmdline by a stand-in curl that then runs the real one)."""
    import hashlib
    import http.server
    import threading

    _tools()
    seen: dict[str, Any] = {}

    class Capture(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            seen["body"] = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen["headers"] = dict(self.headers)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        folder = tmp_path / "nodes" / "edge-1"
        unit = _unit(project_copy, "edge-1", f"http://127.0.0.1:{server.server_address[1]}",
                     folder)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        real = shutil.which("curl")
        (bin_dir / "curl").write_text(
            f'#!/bin/bash\nprintf "%s\\n" "$@" > {tmp_path}/argv\nexec {real} "$@"\n')
        (bin_dir / "curl").chmod(0o755)
        key_dir = folder
        key_dir.mkdir(parents=True)
        (key_dir / "private").write_text(subprocess.run(
            ["wg", "genkey"], capture_output=True, text=True, check=True).stdout)
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "AWS_ACCESS_KEY_ID": "AKTEST",
               "AWS_SECRET_ACCESS_KEY": "secret-that-must-not-leak"}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", unit["script"]], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        thread.join(timeout=10)
        server.server_close()
    body = (folder / "public").read_bytes()
    assert seen["body"] == body
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert "SignedHeaders=" in headers["authorization"]
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "x-amz-content-sha256" in signed and "x-amz-date" in signed
    assert "Credential=AKTEST/" in headers["authorization"]
    assert "/auto/s3/aws4_request" in headers["authorization"]
    argv = (tmp_path / "argv").read_text()
    assert "secret-that-must-not-leak" not in argv and "AKTEST" not in argv
