"""Every generated project file, in one place (the CLI writes and checks them).

From the CUE adapter: ``services/<svc>/edgekit.json`` and the Worker's ``wrangler.jsonc``.
For the Nix side (read by ``nix/estate.nix`` at evaluation time, through the flake):

* ``nix/vector/<env>.json`` — node → ``services.vector.settings`` (OTLP in, R2 out);
* ``nix/postgresql/<env>.json`` — ``services.postgresql`` of the primary: on its WireGuard
  mesh address when it has one (ADR 0010; from CUE alone), else written once the primary's
  private address and network range have come back from ``tofu output -json``
  (`edgekit outputs import`); until then the file does not exist and the node gets no
  Postgres settings;
* ``nix/mesh/<env>.json`` — the WireGuard mesh of every node and Postgres on the mesh
  (ADR 0010; `edgekit.estate.mesh_plan.nixos_mesh`), from CUE and the imported endpoints;
* ``nix/pgbackrest/<env>.json`` — pgBackRest on the primary (ADR 0011), for every env with
  a node of role ``postgres``: from CUE alone;
* ``nix/clouds.json`` — each cloud adapter's node facts (`Cloud.node_facts`: metadata
  addresses, disk and boot layout, networking), read by ``nix/base.nix`` and ``nix/node.nix``.
* ``nix/deploy/<env>.json`` — node → its deploy agent's settings (ADR 0033,
  `edgekit.deploy.plan.agent_settings`): refs, health checks, where it reports.

This module sits at the top (like the CLI) because it joins adapters and constructs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgekit.clouds import CLOUDS
from edgekit.constructs.hyperdrive import hyperdrive_service
from edgekit.constructs.mesh import MeshError
from edgekit.constructs.pg_bootstrap import nixos_postgresql
from edgekit.core.errors import EdgekitError
from edgekit.core.stack import r2_endpoint
from edgekit.core.writer import dump_json
from edgekit.cue.generate import HEADER, generated_files
from edgekit.cue.model import PG_ADDRESS_OUTPUT, PG_CIDR_OUTPUT, Env, Estate
from edgekit.cue.pg_ca import object_key as ca_object_key
from edgekit.deploy.plan import agent_settings
from edgekit.estate.mesh_plan import PUBLISH_CREDENTIALS, nixos_mesh
from edgekit.obs.vector import vector_settings
from edgekit.pg.backup import BackupError, nixos_pgbackrest, settings_for


def nix_files(root: Path, estates: Sequence[Estate]) -> dict[Path, bytes]:
    files: dict[Path, bytes] = {}
    for estate in estates:
        env = estate.env
        endpoint = r2_endpoint(env.cloudflare.account_id)
        settings = {node: vector_settings(stack=env.name, node=node, endpoint=endpoint,
                                          bucket=env.cloudflare.logs_bucket)
                    for node in sorted(env.nodes)}
        files[root / "nix" / "vector" / f"{env.name}.json"] = dump_json(
            {"//": HEADER, **settings})
        files[root / "nix" / "deploy" / f"{env.name}.json"] = dump_json(
            {"//": HEADER, **agent_settings(estate)})
        address = env.observed_value(PG_ADDRESS_OUTPUT)
        cidr = env.observed_value(PG_CIDR_OUTPUT)
        primary = next((n for n, spec in sorted(env.nodes.items())
                        if "postgres" in spec.roles), None)
        mesh_address = env.mesh_address(primary) if primary else None
        if mesh_address is not None and env.postgres.kind == "self":
            # On the mesh (ADR 0010) Postgres needs nothing from apply: nix/mesh.nix narrows
            # pg_hba to the clients' /32s and adds the provider-private address once known.
            listen, network = mesh_address, env.mesh.cidr
        else:
            listen, network = address, cidr
        if isinstance(listen, str) and isinstance(network, str):
            try:
                settings = nixos_postgresql(estate.services, listen_address=listen,
                                            private_cidr=network,
                                            tls_hostnames=[env.zone.origin_hostname("pg")],
                                            hyperdrive=hyperdrive_service(estate.services),
                                            publish_ca=_publish_ca(env, primary))
            except ValueError as err:
                raise EdgekitError(
                    f"cue/outputs/{env.name}.cue: the imported {PG_ADDRESS_OUTPUT} "
                    f"{address!r} / {PG_CIDR_OUTPUT} {cidr!r} cannot configure Postgres: "
                    f"{err}") from err
            files[root / "nix" / "postgresql" / f"{env.name}.json"] = dump_json(
                {"//": HEADER, **settings})
        try:
            mesh = nixos_mesh(env, estate.services,
                              address if isinstance(address, str) else None)
        except MeshError as err:
            raise EdgekitError(f"cue/envs.cue {err}") from err
        if mesh["nodes"]:
            files[root / "nix" / "mesh" / f"{env.name}.json"] = dump_json({"//": HEADER, **mesh})
        if any("postgres" in n.roles for n in env.nodes.values()):
            try:
                backups = nixos_pgbackrest(settings_for(env))
            except BackupError as err:
                raise EdgekitError(f"cue/envs.cue envs.{env.name}.postgres.backups: {err}") from err
            files[root / "nix" / "pgbackrest" / f"{env.name}.json"] = dump_json(
                {"//": HEADER, **backups})
    return files


def _publish_ca(env: Env, primary: str | None) -> dict[str, str] | None:
    """Where the primary PUTs its authority's certificate (logs bucket, ADR 0025)."""
    if primary is None:
        return None
    return {"endpoint": r2_endpoint(env.cloudflare.account_id),
            "bucket": env.cloudflare.logs_bucket, "key": ca_object_key(env.name, primary),
            "credentials": PUBLISH_CREDENTIALS}


def clouds_json(root: Path) -> dict[Path, bytes]:
    """Every cloud's node facts, for the Nix side (one file, whatever the estate uses)."""
    facts = {name: c.node_facts.as_json() for name, c in sorted(CLOUDS.items())}
    header = ("Generated by edgekit from the cloud adapters (edgekit/clouds/, "
              "Cloud.node_facts); do not edit. Regenerate with `edgekit generate`.")
    return {root / "nix" / "clouds.json": dump_json({"//": header, **facts})}


def all_generated(root: Path, estates: Sequence[Estate]) -> dict[Path, bytes]:
    return {**generated_files(root, estates), **nix_files(root, estates), **clouds_json(root)}
