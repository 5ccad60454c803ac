"""The generated S3 backend against a real S3-protocol server that checks signatures.

SeaweedFS (``weed mini`` on 127.0.0.1) stands in for R2. The stack's backend block is the
one edgekit generates; only its endpoint is pointed at the local server, at ``tofu init``
(``-backend-config``), exactly as R2's is reached by name in production. The real tofu
applies real ``random`` and ``terraform_data`` resources.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit import App, R2State, Resource, Stack
from edgekit.obs.testing import SeaweedS3
from tests.conftest import ACCOUNT, Tofu
from tools.toolpaths import plugin_dir

BUCKET = "edgekit-state"
PASSPHRASE = "a-backend-test-passphrase-0123"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3.start(tmp_path_factory.mktemp("seaweed"))
    try:
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        server.stop()


def synth_stack(outdir: Path, *, slow_seconds: int = 0) -> Path:
    app = App(outdir=outdir)
    stack = Stack(app, "backend", state=R2State(account_id=ACCOUNT, bucket=BUCKET))
    Resource(stack, "id", type="random_id", config={"byte_length": 8})
    Resource(stack, "secret", type="random_password", config={"length": 24})
    if slow_seconds:
        Resource(stack, "slow", type="terraform_data", config={
            "input": "slow",
            "provisioner": [{"local-exec": {"command": f"sleep {slow_seconds}"}}]})
    app.synth()
    folder = outdir / "stacks" / "backend"
    backend = json.loads((folder / "cdk.tf.json").read_text())["terraform"]["backend"]["s3"]
    assert backend["endpoints"]["s3"].endswith(".r2.cloudflarestorage.com")
    assert backend["use_lockfile"] is True
    return folder


def with_backend(tofu: Tofu, s3: SeaweedS3, *, secret: str | None = None,
                 passphrase: str = PASSPHRASE) -> Tofu:
    env_tofu = Tofu()
    env_tofu.env.update(AWS_ACCESS_KEY_ID=s3.access_key,
                        AWS_SECRET_ACCESS_KEY=secret or s3.secret_key,
                        TF_VAR_state_passphrase=passphrase)
    return env_tofu


def init(tofu: Tofu, folder: Path, s3: SeaweedS3) -> subprocess.CompletedProcess[str]:
    return tofu(folder, "init", "-input=false", f"-plugin-dir={plugin_dir()}",
                f"-backend-config=endpoints={{s3=\"{s3.endpoint}\"}}")


@pytest.mark.tools
def test_state_in_the_bucket_is_ciphertext_and_needs_the_passphrase(
    tmp_path: Path, tofu: Tofu, s3: SeaweedS3
) -> None:
    folder = synth_stack(tmp_path / "out")
    real = with_backend(tofu, s3)
    first = init(real, folder, s3)
    assert first.returncode == 0, first.stderr
    apply = real(folder, "apply", "-auto-approve", "-input=false")
    assert apply.returncode == 0, apply.stderr
    body = s3.client().get_object(Bucket=BUCKET, Key="backend/terraform.tfstate")["Body"].read()
    state = json.loads(body)
    assert "encrypted_data" in state and "resources" not in state
    assert b"random_password" not in body and b"random_id" not in body
    # The lock file is gone once the apply is done.
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "backend/terraform.tfstate.tflock" not in keys
    # The same state read back with the right passphrase: nothing to change.
    again = real(folder, "plan", "-detailed-exitcode", "-input=false")
    assert again.returncode == 0, again.stdout + again.stderr
    wrong = with_backend(tofu, s3, passphrase="not-the-passphrase-at-all")
    refused = wrong(folder, "plan", "-input=false")
    assert refused.returncode != 0
    assert "decrypt" in (refused.stdout + refused.stderr).lower()


@pytest.mark.tools
def test_wrong_credentials_are_refused_by_the_server(
    tmp_path: Path, tofu: Tofu, s3: SeaweedS3
) -> None:
    folder = synth_stack(tmp_path / "out")
    bad = with_backend(tofu, s3, secret="a-wrong-secret-key-entirely-000")
    refused = init(bad, folder, s3)
    assert refused.returncode != 0
    assert "SignatureDoesNotMatch" in refused.stderr or "403" in refused.stderr, refused.stderr


@pytest.mark.tools
def test_a_second_apply_is_refused_while_the_lock_file_exists(
    tmp_path: Path, tofu: Tofu, s3: SeaweedS3
) -> None:
    folder = synth_stack(tmp_path / "out", slow_seconds=8)
    real = with_backend(tofu, s3)
    assert init(real, folder, s3).returncode == 0
    # The first apply holds the lock (``<key>.tflock`` in the bucket) while its slow
    # resource is created; a second apply in the same folder must be refused.
    first = subprocess.Popen(
        [real.binary, "apply", "-auto-approve", "-input=false", "-no-color"],
        cwd=folder, env=real.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        lock = "backend/terraform.tfstate.tflock"
        while time.monotonic() < deadline:
            listed = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=lock).get("Contents", [])
            if listed or first.poll() is not None:
                break
            time.sleep(0.2)
        assert listed, "the first apply never wrote its lock file"
        second = real(folder, "apply", "-auto-approve", "-input=false", "-lock-timeout=0s")
        assert second.returncode != 0
        assert "lock" in second.stderr.lower(), second.stderr
    finally:
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
