"""Every generated project file, in one place (the CLI writes and checks them).

From the CUE adapter: ``services/<svc>/edgekit.json`` and the Worker's ``wrangler.jsonc``.
For the Nix side (read by ``nix/estate.nix`` at evaluation time, through the flake):

* ``nix/vector/<env>.json`` — node → ``services.vector.settings`` (OTLP in, R2 out);
* ``nix/postgresql/<env>.json`` — ``services.postgresql`` of the primary, written once the
  primary's private address and network range have come back from ``tofu output -json``
  (`edgekit outputs import`); until then the file does not exist and the node gets no
  Postgres settings.

This module sits at the top (like the CLI) because it joins adapters and constructs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgekit.constructs.pg_bootstrap import nixos_postgresql
from edgekit.core.errors import EdgekitError
from edgekit.core.stack import r2_endpoint
from edgekit.core.writer import dump_json
from edgekit.cue.generate import HEADER, generated_files
from edgekit.cue.model import PG_ADDRESS_OUTPUT, PG_CIDR_OUTPUT, Estate
from edgekit.obs.vector import vector_settings


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
        address = env.observed_value(PG_ADDRESS_OUTPUT)
        cidr = env.observed_value(PG_CIDR_OUTPUT)
        if isinstance(address, str) and isinstance(cidr, str):
            try:
                settings = nixos_postgresql(estate.services, listen_address=address,
                                            private_cidr=cidr)
            except ValueError as err:
                raise EdgekitError(
                    f"cue/outputs/{env.name}.cue: the imported {PG_ADDRESS_OUTPUT} "
                    f"{address!r} / {PG_CIDR_OUTPUT} {cidr!r} cannot configure Postgres: "
                    f"{err}") from err
            files[root / "nix" / "postgresql" / f"{env.name}.json"] = dump_json(
                {"//": HEADER, **settings})
    return files


def all_generated(root: Path, estates: Sequence[Estate]) -> dict[Path, bytes]:
    return {**generated_files(root, estates), **nix_files(root, estates)}
