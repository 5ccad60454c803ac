"""`edgekit up`'s view of the world: buckets, state, the project's CUE, the probes.

Everything `edgekit.ops.up.runner.Up` asks outside itself goes through the `Hooks` made
here, so tests can run the real thing against local servers (SeaweedFS for R2, git daemon
for the remote, a stand-in of Cloudflare's API) and the runner stays free of I/O details.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import orjson

from edgekit.cue.model import Estate
from edgekit.ops.tofu import OpsError, Tofu
from edgekit.ops.up.deploy_ref import DeployRef
from edgekit.ops.up.probes import (
    MeshKeysProbe,
    ObjectProbe,
    PostgresProbe,
    Probe,
    ProbeError,
    Seen,
    StatusProbe,
    SystemClock,
    cloudflared_forward,
    direct,
    s3_lister,
)
from edgekit.ops.up.runner import Hooks

PRIMARY_PROBES = ("status", "postgres")
"""What says the primary is up; the first is the default (ADR 0031)."""


@attrs.frozen
class Choices:
    """How `up` reaches what it waits for (from the command line)."""

    env: str
    wait_for: str = PRIMARY_PROBES[0]
    pg_address: tuple[str, int] | None = None
    cloudflared: str = "cloudflared"
    remote: str = "origin"


@attrs.frozen
class NothingToWaitFor:
    why: str

    @property
    def what(self) -> str:
        return self.why

    def check(self) -> Seen:
        return Seen(True, self.why)


def s3_client(endpoint: str, env: Mapping[str, str]) -> Any:
    import boto3

    from edgekit.obs.sync import client_config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="auto",
        config=client_config(max_attempts=3, pool=4),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"))


def bucket_exists(endpoint: str, bucket: str, env: Mapping[str, str]) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3_client(endpoint, env).head_bucket(Bucket=bucket)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise OpsError(f"cannot tell whether state bucket {bucket} exists at {endpoint}: "
                       f"{code or err} (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY must be an R2 "
                       "token that may list and read buckets)") from err
    except BotoCoreError as err:
        raise OpsError(f"cannot reach {endpoint} to look for state bucket {bucket}: {err}") \
            from err
    return True


def logs_endpoint(estate: Estate) -> str:
    from edgekit.core.stack import r2_endpoint
    from edgekit.obs.sync import ENDPOINT_ENV

    return os.environ.get(ENDPOINT_ENV) or r2_endpoint(estate.env.cloudflare.account_id)


def _state_resources(tofu: Tofu, stack: str) -> list[Mapping[str, Any]]:
    done = tofu.run(stack, "show", "-json", "-no-color", check=True)
    try:
        state = orjson.loads(done.stdout or b"{}")
    except orjson.JSONDecodeError as err:
        raise OpsError(f"`tofu show -json` of {stack} printed no JSON") from err
    found: list[Mapping[str, Any]] = []
    todo = [state.get("values", {}).get("root_module", {})]
    while todo:
        module = todo.pop()
        found += module.get("resources", [])
        todo += module.get("child_modules", [])
    return found


def tunnel_access(tofu: Tofu, stack: str) -> tuple[str, str, str]:
    """(hostname, service token id, secret) of the Postgres tunnel's Access application,
    from the environment's state (sensitive values stay in memory)."""
    resources = _state_resources(tofu, stack)
    tokens = [r["values"] for r in resources
              if r.get("type") == "cloudflare_zero_trust_access_service_token"]
    apps = [r["values"] for r in resources
            if r.get("type") == "cloudflare_zero_trust_access_application"
            and str(r.get("values", {}).get("domain", "")).startswith("pg-origin.")]
    if not tokens or not apps:
        raise OpsError(f"no Postgres tunnel Access application in the state of {stack} yet")
    return str(apps[0]["domain"]), str(tokens[0]["client_id"]), str(tokens[0]["client_secret"])


def make_hooks(root: Path, tofu: Tofu, choices: Choices, synth: Any,
               token_check: Any, regenerate_project: Callable[[Path], list[Path]]) -> Hooks:
    """The real hooks; `synth` and `regenerate_project` are the project's one synth and its
    CUE-side regeneration, handed in by the command line (operations never import it)."""
    env = choices.env
    ref_cache: dict[str, DeployRef] = {}

    def load_estate() -> Estate:
        return Estate.load(root, env, check_fresh=False)

    def deploy_ref(estate: Estate) -> DeployRef:
        return ref_cache.setdefault("ref", DeployRef(root, choices.remote,
                                                     estate.env.deploy.ref))

    def order() -> tuple[list[str], dict[str, list[str]]]:
        from edgekit.core.manifest import read_manifest

        manifest = read_manifest(tofu.workspace.outdir)  # checked: names, deps, no cycle
        deps = manifest.dependencies
        if env not in deps:
            raise OpsError(f"no stack named {env!r} (stacks: {', '.join(sorted(deps))})")
        return manifest.with_dependencies([env]), deps

    def logs_client(estate: Estate) -> tuple[Any, str]:
        return s3_client(logs_endpoint(estate), tofu.env), estate.env.cloudflare.logs_bucket

    def primary_probe(estate: Estate, commit: str) -> Probe:
        node = estate.env.primary
        if node is None:
            return NothingToWaitFor(f"{env} has no self-hosted Postgres primary")
        if choices.wait_for == "status":
            client, bucket = logs_client(estate)
            return StatusProbe(report_of(client, bucket, node), env, node, commit,
                               deploy_ref(estate).descends,
                               float(estate.env.deploy.stale_after_seconds),
                               lambda: datetime.now(UTC))
        if choices.pg_address is not None:
            host, port = choices.pg_address
            return PostgresProbe(direct(host, port), f"{host}:{port}, --pg-address")
        if shutil.which(choices.cloudflared) is None:
            raise OpsError(f"{choices.cloudflared} not found: the Postgres probe reaches the "
                           "primary through its tunnel with `cloudflared access tcp`; install "
                           "cloudflared, pass --pg-address HOST:PORT, or --wait-for status")
        hostname, token_id, secret = tunnel_access(tofu, env)
        return PostgresProbe(cloudflared_forward(choices.cloudflared, hostname, token_id,
                                                 secret), f"{hostname} through cloudflared")

    def report_of(client: Any, bucket: str, node: str) -> Any:
        from edgekit.deploy.reports import DeployError, Report, read_reports

        def read() -> Report:
            try:
                return read_reports(client, bucket, env, [node])[node]
            except DeployError as err:
                raise ProbeError(str(err)) from err
        return read

    def ca_probe(estate: Estate) -> Probe:
        from edgekit.cue.pg_ca import object_key

        client, bucket = logs_client(estate)
        node = estate.env.primary or ""
        return ObjectProbe(s3_lister(client, bucket), object_key(env, node),
                           f"the primary {node} to publish its Postgres authority "
                           f"({object_key(env, node)})")

    def import_ca(estate: Estate) -> list[str] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        from edgekit.constructs.pg_tls import CA_OUTPUT
        from edgekit.cue.pg_ca import PgCaError, file_name, import_published

        client, bucket = logs_client(estate)
        current = estate.env.observed_value(CA_OUTPUT)
        try:
            done = import_published(root, client, bucket, env, estate.env.primary or "",
                                    current if isinstance(current, str) else None)
        except PgCaError as err:
            raise OpsError(f"{err}. A deliberate change: `edgekit pg import-ca --stack {env} "
                           "--rotate`, then `edgekit up` again") from err
        except (BotoCoreError, ClientError) as err:
            raise ProbeError(f"cannot read the primary's authority from s3://{bucket}: "
                             f"{err}") from err
        if done is None:
            return None
        if not done.written:
            return []
        return [f"cue/outputs/{file_name(env)}", *regenerate()]

    def mesh_probe(estate: Estate, nodes: Sequence[str]) -> Probe:
        client, bucket = logs_client(estate)
        return MeshKeysProbe(s3_lister(client, bucket), env, tuple(nodes))

    def regenerate() -> list[str]:
        return [str(p.relative_to(root)) for p in regenerate_project(root)]

    def import_outputs(text: str) -> list[str]:
        from edgekit.cue.outputs import import_outputs as do_import

        done = do_import(root, env, text, Estate.env_names(root))
        if not done.written:
            return []
        return [str(done.path.relative_to(root)), *regenerate()]

    def import_mesh_keys(estate: Estate) -> list[str]:
        from edgekit.cue.mesh_keys import file_name, plan_keys, read_published, write_keys
        from edgekit.estate.mesh_plan import mesh_plan

        client, bucket = logs_client(estate)
        published = read_published(client, bucket, env)
        if published.refused:
            raise OpsError("objects under mesh/ that are not keys: "
                           + "; ".join(published.refused))
        plan = plan_keys(env, mesh_plan(estate.env).addresses, estate.env.mesh.public_keys,
                         published.keys)
        if not write_keys(root, env, plan.keys):
            return []
        return [f"cue/outputs/{file_name(env)}", *regenerate()]

    def committed_paths() -> list[Path]:
        from edgekit.generated import all_generated

        estates = [Estate.load(root, name, check_fresh=False)
                   for name in Estate.env_names(root)]
        generated = sorted(all_generated(root, estates))
        return [root / "cue" / "outputs", root / "cue" / "export", *generated]

    def token(documents: Mapping[str, Mapping[str, Any]]) -> str:
        from edgekit.constructs.later import LATER_FILE, later_types

        later = {}  # what the stacks add on a later synth (Hyperdrive): needed all the same
        for stack in documents:
            path = tofu.workspace.stack_dir(stack) / LATER_FILE
            if path.is_file():
                later[stack] = later_types({LATER_FILE: orjson.loads(path.read_bytes())})
        result: str = token_check(documents, load_estate(), later)
        return result

    def exists(endpoint: str, bucket: str) -> bool:
        return bucket_exists(endpoint, bucket, tofu.env)

    return Hooks(synth=synth, token_check=token, bucket_exists=exists,
                 primary_probe=primary_probe, mesh_probe=mesh_probe,
                 import_outputs=import_outputs, import_mesh_keys=import_mesh_keys,
                 ca_probe=ca_probe, import_ca=import_ca,
                 committed_paths=committed_paths, load_estate=load_estate,
                 stack_order=order, clock=SystemClock())
