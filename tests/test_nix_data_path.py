"""The Nix side of the private data path: nix/pgbackrest.nix and nix/mesh.nix evaluated
with Debian's real nix-instantiate, each on its own with the vendored upstream modules and the
stand-ins (nix/eval/), from the generated JSON; and the
estate wiring (PGHOST is the primary's mesh address, in Nix and in Python alike)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.cue.model import Estate
from edgekit.estate.mesh_plan import nixos_mesh
from edgekit.nix.compose import compose_estate
from edgekit.nix.evaluate import INSTALL_HINT, evaluate_file
from edgekit.pg.backup import nixos_pgbackrest, settings_for
from tests.conftest import ROOT

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module", autouse=True)
def nix() -> None:
    if shutil.which("nix-instantiate") is None:
        pytest.fail(f"nix-instantiate is not installed; install it: {INSTALL_HINT}")


def _module(path: Path, settings: dict[str, Any], *, postgres: bool = False) -> Any:
    """The evaluated configuration of the module at `path` (with upstream's postgresql.nix
    switched on when `postgres`), as the report and the raw option values."""
    from tests.test_nix import evaluate_modules
    pg = "{ services.postgresql.enable = true; }" if postgres else "{ }"
    return evaluate_modules(
        f"[ (import {json.dumps(str(path))} {{ settings = args; }}) {pg} ]",
        "{ inherit (r) services timers etc tmpfiles postgresql networking users; "
        "environment.systemPackages = map (p: p.name) c.environment.systemPackages; }",
        settings)


def test_pgbackrest_module() -> None:
    estate = Estate.load(ROOT, "prod", check_fresh=False)
    data = nixos_pgbackrest(settings_for(estate.env))
    config = _module(ROOT / "nix" / "pgbackrest.nix", data, postgres=True)
    # pg1-path is the evaluated data directory of upstream's module (17 on 25.11)
    assert config["etc"]["pgbackrest/pgbackrest.conf"]["text"] == \
        data["conf"] + "pg1-path=/var/lib/postgresql/17\n"
    assert config["postgresql"]["settings"]["archive_mode"] == "on"
    units = config["services"]
    assert set(units) == {"edgekit-pgbackrest-full", "edgekit-pgbackrest-diff",
                          "edgekit-pgbackrest-stanza", "postgresql", "postgresql-setup",
                          "firewall"}  # upstream's firewall is on by default
    assert units["edgekit-pgbackrest-full"]["script"] == \
        "'edgekit-pgbackrest' '--stanza=prod' '--type=full' 'backup'"
    assert units["edgekit-pgbackrest-full"]["serviceConfig"]["User"] == "postgres"
    timers = config["timers"]
    assert timers["edgekit-pgbackrest-full"]["timerConfig"]["OnCalendar"] == "Sun *-*-* 03:00:00"
    assert timers["edgekit-pgbackrest-diff"]["timerConfig"]["OnCalendar"] == \
        "Mon..Sat *-*-* 03:00:00"
    assert [p["name"] for p in units["postgresql"]["path"]][:2] == [
        "postgresql-and-plugins-17.6", "edgekit-pgbackrest"]
    assert units["postgresql"]["serviceConfig"]["ReadWritePaths"] == [
        "/var/spool/pgbackrest", "/var/log/pgbackrest", "/run/pgbackrest"]
    wrapper = evaluate_modules_wrapper(data)
    assert wrapper["name"] == "edgekit-pgbackrest"
    assert wrapper["inputs"] == ["pgbackrest-0", "coreutils-0"]
    assert "PGBACKREST_REPO1_CIPHER_PASS=\"$(cat /run/keys/edgekit/pgbackrest_cipher_pass)\"" \
        in wrapper["text"]
    # no keys group: pgbackrest_* files are root:postgres (ADR 0008); postgres is upstream's
    assert set(config["users"]) == {"postgres", "root", "nobody"}


def evaluate_modules_wrapper(data: dict[str, Any]) -> Any:
    from tests.test_nix import evaluate_modules
    return evaluate_modules(
        f"[ (import {json.dumps(str(ROOT / 'nix' / 'pgbackrest.nix'))} {{ settings = args; }}) "
        "{ services.postgresql.enable = true; } ]",
        "let w = builtins.head (builtins.filter (p: p.name == \"edgekit-pgbackrest\") "
        "c.environment.systemPackages); in "
        "{ inherit (w) name text; inputs = map (i: i.name) w.runtimeInputs; }", data)


def test_mesh_module_on_the_primary_and_an_edge_node() -> None:
    estate = Estate.load(ROOT, "prod", check_fresh=False)
    data = nixos_mesh(estate.env, estate.services, "10.2.0.3")
    primary = _module(ROOT / "nix" / "mesh.nix", data["nodes"]["pg-tokyo"], postgres=True)
    wg = primary["networking"]["wireguard"]["interfaces"]["wg-edgekit"]
    assert wg["ips"] == ["10.100.0.1/24"] and wg["listenPort"] == 51820
    assert wg["generatePrivateKeyFile"] is True
    # the key publisher survives on the primary next to Postgres' ordering after the mesh
    assert {"edgekit-mesh-key", "postgresql"} <= set(primary["services"])
    assert primary["services"]["postgresql"]["after"] == [
        "network.target", "wireguard-wg-edgekit.service"]
    assert wg["privateKeyFile"] == "/var/lib/edgekit/wireguard/private"
    pg = primary["postgresql"]
    # priority 40 beats upstream's listen_addresses (from enableTCPIP) and pg_hba defaults
    assert pg["settings"]["listen_addresses"] == "10.100.0.1,10.2.0.3"
    hba = pg["authentication"].splitlines()
    assert hba[0] == "local all all peer"
    assert "hostssl api svc_api_rw 10.100.0.21/32 scram-sha-256" in hba
    assert "hostssl web svc_web_ro 10.100.0.1/32 scram-sha-256" in hba  # Hyperdrive's path
    assert hba[-2:] == ["host all all 0.0.0.0/0 reject", "host all all ::/0 reject"]
    assert primary["networking"]["firewall"]["interfaces"]["wg-edgekit"]["allowedTCPPorts"] \
        == [5432]
    assert primary["networking"]["firewall"]["extraCommands"] == ""  # no peer known yet
    assert primary["networking"]["firewall"]["allowedUDPPorts"] == []
    keyed = attrs.evolve(estate.env, mesh=attrs.evolve(estate.env.mesh, public_keys={
        "edge-1": "Zm9vYmFyIGZvb2JhciBmb29iYXIgZm9vYmFyIGZvb2I=",
        "pg-tokyo": "cGctdG9reW8tcHVibGljLWtleS0wMTIzNDU2Nzg5YWI="}), observed={
        "mesh_endpoints": {"sensitive": False, "type": "object",
                           "value": {"edge-1": "203.0.113.11", "pg-tokyo": "203.0.113.31"}}})
    peered = _module(ROOT / "nix" / "mesh.nix",
                     nixos_mesh(keyed, estate.services)["nodes"]["pg-tokyo"], postgres=True)
    (peer,) = peered["networking"]["wireguard"]["interfaces"]["wg-edgekit"]["peers"]
    set_options = {k: v for k, v in peer.items() if v is not None}  # upstream adds defaults
    assert set_options == {"name": "edge-1",
                           "publicKey": "Zm9vYmFyIGZvb2JhciBmb29iYXIgZm9vYmFyIGZvb2I=",
                           "allowedIPs": ["10.100.0.11/32"],
                           "endpoint": "203.0.113.11:51820", "persistentKeepalive": 25}
    assert peered["networking"]["firewall"]["extraCommands"] == (
        "iptables -A nixos-fw -p udp --dport 51820 -s 203.0.113.11 -j nixos-fw-accept")
    edge = _module(ROOT / "nix" / "mesh.nix", data["nodes"]["edge-1"])
    assert edge["postgresql"] is None
    assert edge["networking"]["firewall"]["interfaces"]["wg-edgekit"]["allowedTCPPorts"] == []
    assert "wg pubkey < '/var/lib/edgekit/wireguard/private'" in \
        edge["services"]["edgekit-mesh-key"]["script"]


def test_services_reach_the_primary_at_its_mesh_address() -> None:
    estate_nix = evaluate_file(ROOT / "nix" / "estate.nix", {})
    for env in ("prod", "staging"):
        estate = Estate.load(ROOT, env, check_fresh=False)
        python = compose_estate(estate)
        for node, composed in python.items():
            assert estate_nix[node]["composed"] == composed
    assert estate_nix["edge-1"]["composed"]["env"]["api"]["PGHOST"] == "10.100.0.1"
    assert estate_nix["edge-1"]["mesh"]["address"] == "10.100.0.11/24"
    assert estate_nix["pg-tokyo"]["pgbackrest"]["stanzaCreate"][-1] == "stanza-create"
    assert estate_nix["staging-1"]["composed"]["env"]["api"]["PGHOST"] == "10.100.0.1"
