"""The primary's TLS authority reaches CUE without copy-paste (ADR 0025), the way the mesh
keys do (ADR 0010): the primary's edgekit-pg-tls and edgekit-pg-tls-publish units, evaluated
from nix/node.nix (the vendored NixOS modules), run with the real openssl and curl and PUT
the certificate (SigV4) into a real S3 server that checks signatures (SeaweedFS); `edgekit pg
import-ca` reads it back into cue/outputs/<env>.pg-tls.cue, re-exports, and the next synth
makes Hyperdrive pin it. Trust on first use: a changed authority needs --rotate."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import pytest

from edgekit.constructs.pg_tls import CA_OUTPUT, PUBLISH_UNIT, TLS_UNIT
from edgekit.cue.model import Estate
from edgekit.cue.pg_ca import PgCaError, object_key, parse_authority, plan_ca, render_cue
from edgekit.obs.contract import NODE_KEYS
from edgekit.obs.testing import SeaweedS3
from tests.conftest import RunCli, tree_of
from tests.pg_ca_units import primary_tls_units, run_script

KEY = "pg-tls/prod/pg-tokyo.crt"
NOT_A_CA = """\
-----BEGIN CERTIFICATE-----
MIIBfjCCASSgAwIBAgIUeYQ4vqkMBL6mBjj6jz0FbPvHHP4wCgYIKoZIzj0EAwIw
-----END CERTIFICATE-----
"""


def _authority(folder: Path, *, ca: bool = True, days: int = 30) -> bytes:
    """A certificate made with the real openssl: an authority, or a plain one."""
    folder.mkdir(parents=True, exist_ok=True)
    extension = "basicConstraints=critical,CA:TRUE" if ca else "basicConstraints=CA:FALSE"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", str(days), "-subj", "/CN=t",
                    "-addext", extension, "-keyout", str(folder / "k"), "-out",
                    str(folder / "c")], check=True, capture_output=True, timeout=60)
    return (folder / "c").read_bytes()


# -- what is an authority, and what changes (pure) ------------------------------------------

def test_only_one_unexpired_pem_authority_is_taken(tmp_path: Path) -> None:
    pem = _authority(tmp_path / "ca")
    found = parse_authority(pem, "o")
    assert found.pem == pem.decode() and found.subject == "commonName=t"
    assert parse_authority(pem.replace(b"\n", b"\r\n"), "o").pem == pem.decode()
    for body, words in (
            (b"", "found an empty object"),
            (b"hello", "found 'hello'"),
            (pem + pem, "found 2 certificates"),
            (pem + b"trailing", "found 'trailing'"),
            (b"\xff\xfe", "not ASCII text"),
            (NOT_A_CA.encode(), "OpenSSL cannot read the certificate"),
            (_authority(tmp_path / "leaf", ca=False), "is not a certificate authority")):
        with pytest.raises(PgCaError, match=words):
            parse_authority(body, "s3://b/k")
    later = ssl.cert_time_to_seconds(found.not_after) + 1  # a clock after its end
    with pytest.raises(PgCaError, match="the authority expired on"):
        parse_authority(pem, "o", now=later)


def test_trust_on_first_use(tmp_path: Path) -> None:
    first = parse_authority(_authority(tmp_path / "a"), "o")
    second = parse_authority(_authority(tmp_path / "b"), "o")
    assert plan_ca("prod", None, first) == "new"
    assert plan_ca("prod", first.pem, first) == "same"
    with pytest.raises(PgCaError, match=r"differs from pg_tls_ca in CUE \(sha256 .*--rotate"):
        plan_ca("prod", first.pem, second)
    assert plan_ca("prod", first.pem, second, rotate=True) == "rotated"
    with pytest.raises(PgCaError, match="is the one in CUE already"):
        plan_ca("prod", first.pem, first, rotate=True)
    with pytest.raises(PgCaError, match="has no pg_tls_ca in CUE yet"):
        plan_ca("prod", None, first, rotate=True)


def test_the_rendered_cue_is_an_observed_output_holding_only_the_certificate() -> None:
    text = render_cue("prod", "-----BEGIN CERTIFICATE-----\nAB\n-----END CERTIFICATE-----\n")
    assert 'observed: "prod": pg_tls_ca: {' in text and "package outputs" in text
    assert '"value": "-----BEGIN CERTIFICATE-----\\nAB\\n-----END CERTIFICATE-----\\n"' in text
    assert "PRIVATE" not in text


def test_the_authoritys_objects_are_one_of_the_nodes_own_keys() -> None:
    """Never locked or expired (EK221), never mirrored by `logs sync` (test_logs_prune)."""
    assert object_key("prod", "pg-tokyo") == KEY
    assert any(KEY.startswith(prefix) for prefix in NODE_KEYS)


# -- end to end -------------------------------------------------------------------------------

@pytest.fixture
def s3(logs_s3: SeaweedS3) -> SeaweedS3:
    return logs_s3


def test_the_primarys_authority_reaches_cue_and_hyperdrive(
        tmp_path: Path, project_copy: Path, cli: RunCli, s3: SeaweedS3,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_SCHEMA_DIR", str(project_copy / "schema"))
    creds = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}

    def import_ca(*extra: str) -> subprocess.CompletedProcess[str]:
        return cli("pg", "import-ca", "--stack", "prod", "--endpoint", s3.endpoint, *extra,
                   env=creds)

    # the apply's outputs came back first (what `edgekit up` does before it waits)
    done = cli("outputs", "import", "--stack", "prod", stdin=json.dumps({
        "pg_primary_private_ip": {"sensitive": False, "type": "string", "value": "10.2.0.3"}}))
    assert done.returncode == 0, done.stderr
    before = tree_of(project_copy)
    nothing = import_ca()
    assert nothing.returncode == 1, nothing.stderr
    assert f"nothing published at s3://edgekit-logs/{KEY} yet" in nothing.stderr
    assert "Traceback" not in nothing.stderr
    assert tree_of(project_copy) == before

    # the primary boots: its certificate unit, then the unit that publishes the authority
    tls = tmp_path / "node" / "pg-tls"
    report = primary_tls_units(project_copy, tmp_path / "eval", "prod", tls_dir=tls,
                               endpoint=s3.endpoint)
    units = report["services"]
    publish = units[PUBLISH_UNIT]
    assert publish["serviceConfig"]["EnvironmentFile"] == "/run/keys/edgekit/vector.env"
    assert f"{TLS_UNIT}.service" in publish["after"] and \
        f"{TLS_UNIT}.service" in publish["requires"]
    assert f"{TLS_UNIT}.service" in publish["wantedBy"]  # each (daily) run publishes again
    assert f"{PUBLISH_UNIT}.service" not in units["postgresql"]["requires"] + \
        units["postgresql"]["after"]  # Postgres never waits for the network
    assert report["timers"][TLS_UNIT]["timerConfig"]["OnCalendar"] == "daily"
    for unit in (TLS_UNIT, PUBLISH_UNIT):
        done = run_script(units[unit], s3.access_key, s3.secret_key)
        assert done.returncode == 0, f"{unit}: {done.stdout}{done.stderr}"
    ca_pem = (tls / "ca.crt").read_text()
    bucket = s3.client()
    assert bucket.get_object(Bucket="edgekit-logs", Key=KEY)["Body"].read().decode() == ca_pem
    listed = bucket.list_objects_v2(Bucket="edgekit-logs")["Contents"]
    assert [o["Key"] for o in listed] == [KEY]  # the authority only: no key left the node
    assert "PRIVATE KEY" in (tls / "ca.key").read_text()

    done = import_ca()
    assert done.returncode == 0, done.stderr
    assert "took pg-tokyo's authority (sha256" in done.stderr
    written = project_copy / "cue" / "outputs" / "prod.pg-tls.cue"
    assert written.is_file()
    estate = Estate.load(project_copy, "prod")
    assert estate.env.observed_value(CA_OUTPUT) == ca_pem  # exactly the PEM, byte for byte
    export = json.loads((project_copy / "cue" / "export" / "prod.json").read_text())
    assert export["env"]["observed"][CA_OUTPUT]["value"] == ca_pem
    assert "PRIVATE" not in written.read_text()

    # again: nothing new, nothing written
    settled = tree_of(project_copy)
    again = import_ca()
    assert again.returncode == 0 and "left as it was" in again.stderr
    assert tree_of(project_copy) == settled

    # the next synth pins it: Hyperdrive's config exists, verify-full against this authority
    synth = cli("synth", "prod")
    assert synth.returncode == 0, synth.stderr
    doc = json.loads((project_copy / "cdktf.out" / "stacks" / "prod" / "cdk.tf.json")
                     .read_text())
    (ca,) = doc["resource"]["cloudflare_mtls_certificate"].values()
    assert ca["certificates"] == ca_pem and ca["ca"] is True
    (config,) = doc["resource"]["cloudflare_hyperdrive_config"].values()
    assert config["mtls"]["sslmode"] == "verify-full"
    settled = tree_of(project_copy)

    # the authority is replaced on the node: refused without --rotate, nothing written
    (tls / "ca.key").unlink()
    for unit in (TLS_UNIT, PUBLISH_UNIT):
        assert run_script(units[unit], s3.access_key, s3.secret_key).returncode == 0
    new_pem = (tls / "ca.crt").read_text()
    assert new_pem != ca_pem
    refused = import_ca()
    assert refused.returncode == 1
    assert "the published Postgres authority (sha256" in refused.stderr
    assert "differs from pg_tls_ca in CUE (sha256" in refused.stderr
    assert "accept it with --rotate" in refused.stderr and "Traceback" not in refused.stderr
    assert tree_of(project_copy) == settled
    rotated = import_ca("--rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "rotated to pg-tokyo's authority" in rotated.stderr
    assert Estate.load(project_copy, "prod").env.observed_value(CA_OUTPUT) == new_pem
    settled = tree_of(project_copy)

    # what is not one authority is refused, naming the object; nothing written
    for body, words in ((b"not a certificate", "expected exactly one PEM certificate"),
                        ((tls / "server.crt").read_bytes(), "not a certificate authority")):
        bucket.put_object(Bucket="edgekit-logs", Key=KEY, Body=body)
        bad = import_ca("--rotate")
        assert bad.returncode == 1, bad.stderr
        assert f"s3://edgekit-logs/{KEY}: " in bad.stderr and words in bad.stderr
        assert tree_of(project_copy) == settled

    # a wrong secret: the node's PUT is refused by the server and its unit fails
    wrong = run_script(units[PUBLISH_UNIT], s3.access_key, "not-the-secret")
    assert wrong.returncode != 0 and "403" in wrong.stderr
    # and the import with wrong keys says so, naming the bucket
    denied = cli("pg", "import-ca", "--stack", "prod", "--endpoint", s3.endpoint,
                 env={**creds, "AWS_SECRET_ACCESS_KEY": "nope"})
    assert denied.returncode == 1 and "the credentials were refused" in denied.stderr


def test_an_environment_without_a_self_hosted_primary_is_told_so(
        project_copy: Path, cli: RunCli) -> None:
    done = cli("pg", "import-ca", "--stack", "nope")
    assert done.returncode == 1 and "no environment 'nope' in cue/" in done.stderr
