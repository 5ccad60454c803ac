"""The private mesh (ADR 0010): planning, the synth-time private-path check, the firewall
exception, and the proof: two network namespaces joined by a veth pair, userspace WireGuard
(wireguard-go from the tool cache, `wg` from wireguard-tools) configured from what edgekit
generates for two nodes, PostgreSQL of the nodes' major listening on the mesh address in one,
the service's role connecting from the other, and connections from outside the mesh refused."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from edgekit.check.engine import REGISTRY, Context, Finding, run
from edgekit.check.rules import catalogue
from edgekit.constructs.mesh import MeshError, MeshPlan, peers_of, wg_setconf
from edgekit.cue.layout import layout_of_estate
from edgekit.cue.model import Estate, Node
from edgekit.estate.mesh_plan import mesh_hba, mesh_plan
from tests.conftest import ROOT
from tests.pg_server import TIMEOUT, PgServer, pg_bin, throwaway_postgres
from tools.toolpaths import tools_dir

KEY_A = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28="
KEY_B = "Zm9vYmFyIGZvb2JhciBmb29iYXIgZm9vYmFyIGZvb2I="


def _prod() -> Estate:
    return Estate.load(ROOT, "prod", check_fresh=False)


def _two_nodes(keys: dict[str, str]) -> Estate:
    """prod reduced to the primary (vultr) and the Linode node running api and web."""
    estate = _prod()
    env = estate.env
    nodes = {n: env.nodes[n] for n in ("pg-tokyo", "edge-tokyo")}
    mesh = attrs.evolve(env.mesh, public_keys=keys)
    env = attrs.evolve(env, nodes=nodes, placement={"edge-tokyo": ("api", "web")}, mesh=mesh)
    return attrs.evolve(estate, env=env)


# -- planning ------------------------------------------------------------------------------

def test_addresses_come_from_cue() -> None:
    plan = mesh_plan(_prod().env)
    assert plan.addresses == {"edge-1": "10.100.0.11", "edge-2": "10.100.0.12",
                              "edge-tokyo": "10.100.0.21", "pg-tokyo": "10.100.0.1"}
    assert plan.port == 51820


def test_duplicate_and_out_of_range_hosts_are_refused() -> None:
    env = _prod().env
    nodes = dict(env.nodes)
    nodes["edge-2"] = attrs.evolve(nodes["edge-2"], mesh_host=11)
    nodes["edge-tokyo"] = attrs.evolve(nodes["edge-tokyo"], mesh_host=255)
    with pytest.raises(MeshError) as err:
        mesh_plan(attrs.evolve(env, nodes=nodes))
    assert "nodes edge-1 and edge-2 both have mesh_host 11" in str(err.value)
    assert "node edge-tokyo: mesh_host 255 is outside 10.100.0.0/24 (1..254)" in str(err.value)


def test_peers_only_with_known_key_and_endpoint() -> None:
    env = _two_nodes({"pg-tokyo": KEY_A, "edge-tokyo": KEY_B}).env
    plan = mesh_plan(env)
    assert peers_of(plan, "edge-tokyo", {"pg-tokyo": "198.51.100.7"}) == [{
        "name": "pg-tokyo", "publicKey": KEY_A, "allowedIPs": ["10.100.0.1/32"],
        "endpoint": "198.51.100.7:51820", "endpointHost": "198.51.100.7",
        "persistentKeepalive": 25}]
    assert peers_of(plan, "pg-tokyo", {"pg-tokyo": "198.51.100.7"}) == []  # no endpoint yet


def test_hba_admits_exactly_the_mesh_addresses_per_role() -> None:
    estate = _prod()
    lines = mesh_hba(estate.env, estate.services, mesh_plan(estate.env))
    assert lines[1:] == [
        "hostssl api svc_api_rw 10.100.0.11/32 scram-sha-256",
        "hostssl web svc_web_ro 10.100.0.11/32 scram-sha-256",
        "hostssl api svc_api_rw 10.100.0.12/32 scram-sha-256",
        "hostssl web svc_web_ro 10.100.0.12/32 scram-sha-256",
        "hostssl api svc_api_rw 10.100.0.21/32 scram-sha-256",
        "hostssl web svc_web_ro 10.100.0.21/32 scram-sha-256",
        # Hyperdrive: web's role, from the primary's own mesh address (cloudflared there)
        "# edgekit: Hyperdrive, through cloudflared on this node (source: its own address)",
        "hostssl web svc_web_ro 10.100.0.1/32 scram-sha-256",
        "host all all 0.0.0.0/0 reject",
        "host all all ::/0 reject",
    ]


def _private_path_findings(estate: Estate) -> list[Finding]:
    catalogue()
    return run(Context(layouts=(layout_of_estate(estate),)), [REGISTRY["EK181"]])


def test_a_service_without_a_private_path_is_refused() -> None:
    estate = _prod()
    env = estate.env
    nodes: dict[str, Node] = dict(env.nodes)
    nodes["edge-1"] = attrs.evolve(nodes["edge-1"], mesh_host=None)
    found = _private_path_findings(attrs.evolve(estate, env=attrs.evolve(env, nodes=nodes)))
    assert [(f.address, f.pointer, f.message) for f in found] == [
        ("cue/export/prod.json", "$.env.placement.edge-1[0]",
         "service 'api' on node 'edge-1' needs Postgres (rw) but has no private path to the "
         "primary 'pg-tokyo': edge-1 not in the mesh, and edge-1 (hetzner fsn1) "
         "shares no private network with pg-tokyo (vultr nrt)"),
        ("cue/export/prod.json", "$.env.placement.edge-1[1]",
         "service 'web' on node 'edge-1' needs Postgres (ro) but has no private path to the "
         "primary 'pg-tokyo': edge-1 not in the mesh, and edge-1 (hetzner fsn1) "
         "shares no private network with pg-tokyo (vultr nrt)"),
    ]
    assert found[0].fix.endswith("or place the service elsewhere, in cue/envs.cue")
    assert _private_path_findings(estate) == []


def test_synth_refuses_the_placement(tmp_path: Path) -> None:
    """The constructs built from the estate give the same finding, at synth."""
    from edgekit import App, SynthError
    from stacks.estate import EstateStack

    estate = _prod()
    nodes = dict(estate.env.nodes)
    nodes["edge-tokyo"] = attrs.evolve(nodes["edge-tokyo"], mesh_host=None)
    estate = attrs.evolve(estate, env=attrs.evolve(estate.env, nodes=nodes))
    app = App(outdir=tmp_path)
    EstateStack(app, estate)
    with pytest.raises(SynthError, match=r"EK181 service 'api' on node 'edge-tokyo' needs "
                       r"Postgres \(rw\) but has no private path to the primary 'pg-tokyo'"):
        app.synth_results()


# -- the firewall exception ------------------------------------------------------------------

def test_wireguard_port_open_only_to_the_other_nodes() -> None:
    from stacks import make_app

    app = make_app()
    (result,) = app.synth_results(["prod"])
    resources = result.document["resource"]
    hcloud = resources["hcloud_firewall"]["nodes_mesh_edge_1_firewall"]["rule"]
    assert hcloud == [{"direction": "in", "protocol": "udp", "port": "51820",
                       "description": "wireguard mesh", "source_ips": [
                           "${hcloud_server.nodes_edge_2.ipv4_address}/32",
                           "${tolist(linode_instance.nodes_edge_tokyo.ipv4)[0]}/32",
                           "${vultr_instance.nodes_pg_tokyo.main_ip}/32"]}]
    attach = resources["hcloud_firewall_attachment"]["nodes_mesh_edge_1_attachment"]
    assert attach["server_ids"] == ["${hcloud_server.nodes_edge_1.id}"]
    linode = resources["linode_firewall"]["nodes_edge_tokyo_firewall"]["inbound"]
    assert [r for r in linode if r["protocol"] == "UDP"] == [{
        "label": "wireguard-mesh", "action": "ACCEPT", "protocol": "UDP", "ports": "51820",
        "ipv4": ["${hcloud_server.nodes_edge_1.ipv4_address}/32",
                 "${hcloud_server.nodes_edge_2.ipv4_address}/32",
                 "${vultr_instance.nodes_pg_tokyo.main_ip}/32"]}]
    vultr = [r for k, r in resources["vultr_firewall_rule"].items() if "mesh" in k]
    assert sorted(r["subnet"] for r in vultr) == [
        "${hcloud_server.nodes_edge_1.ipv4_address}",
        "${hcloud_server.nodes_edge_2.ipv4_address}",
        "${tolist(linode_instance.nodes_edge_tokyo.ipv4)[0]}"]
    assert {(r["protocol"], r["port"], r["subnet_size"]) for r in vultr} == {("udp", "51820", 32)}
    # nothing else became reachable over UDP
    every_udp = [r for r in hcloud if r["protocol"] == "udp"]
    assert len(every_udp) == 1


# -- the proof: namespaces, wireguard-go, PostgreSQL ----------------------------------------

def _run(*argv: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    if "input" not in kwargs:
        kwargs["stdin"] = subprocess.DEVNULL
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT,
                          **kwargs)  # type: ignore[call-overload]
    if check:
        assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}{done.stderr}"
    result: subprocess.CompletedProcess[str] = done
    return result


@attrs.define
class Namespaces:
    names: dict[str, str]
    """node -> network namespace"""
    interfaces: dict[str, str]
    public: dict[str, str]
    """node -> its "public" address on the veth link"""
    procs: list[subprocess.Popen[bytes]] = attrs.field(factory=list)

    def exec(self, node: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.names[node], *argv]


@contextlib.contextmanager
def two_namespaces(nodes: tuple[str, str]) -> Iterator[Namespaces]:
    tag = f"{os.getpid() % 100000}"
    ns = Namespaces(names={n: f"ek{i}-{tag}" for i, n in enumerate(nodes)},
                    interfaces={n: f"wgek{i}{tag}" for i, n in enumerate(nodes)},
                    public={nodes[0]: "192.0.2.1", nodes[1]: "192.0.2.2"})
    created: list[str] = []
    try:
        for node in nodes:
            _run("ip", "netns", "add", ns.names[node])
            created.append(ns.names[node])
            _run(*ns.exec(node, "ip", "link", "set", "lo", "up"))
        a, b = nodes
        _run("ip", "link", "add", f"ve0-{tag}", "netns", ns.names[a], "type", "veth",
             "peer", "name", f"ve1-{tag}", "netns", ns.names[b])
        for node, veth in ((a, f"ve0-{tag}"), (b, f"ve1-{tag}")):
            _run(*ns.exec(node, "ip", "addr", "add", f"{ns.public[node]}/24", "dev", veth))
            _run(*ns.exec(node, "ip", "link", "set", veth, "up"))
        yield ns
    finally:
        for proc in ns.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        for name in created:
            _run("ip", "netns", "del", name, check=False)


def _wireguard_go() -> str:
    binary = tools_dir() / "bin" / "wireguard-go"
    if not binary.is_file():
        pytest.fail(f"{binary} not found: run tools/build-wireguard-go.sh (make tools does)")
    if shutil.which("wg") is None:
        pytest.fail("`wg` not found: apt-get install wireguard-tools (make system-deps does)")
    return str(binary)


def _join(ns: Namespaces, node: str, plan: MeshPlan, key_file: Path,
          endpoints: dict[str, str], conf_dir: Path) -> None:
    iface = ns.interfaces[node]
    proc = subprocess.Popen(ns.exec(node, _wireguard_go(), "-f", iface),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    ns.procs.append(proc)
    deadline = time.monotonic() + TIMEOUT
    while _run(*ns.exec(node, "ip", "link", "show", iface), check=False).returncode != 0:
        assert proc.poll() is None and time.monotonic() < deadline, "wireguard-go did not start"
        time.sleep(0.05)
    conf = conf_dir / f"{node}.conf"
    conf.write_text(wg_setconf(plan, node, endpoints, str(key_file)))
    conf.chmod(0o600)
    _run(*ns.exec(node, "wg", "setconf", iface, str(conf)))
    prefix = plan.cidr.split("/")[1]
    _run(*ns.exec(node, "ip", "addr", "add", f"{plan.address(node)}/{prefix}", "dev", iface))
    _run(*ns.exec(node, "ip", "link", "set", iface, "up"))


def _keypair(folder: Path, node: str) -> tuple[Path, str]:
    """What the node does at first boot: a private key that never leaves it."""
    private = folder / f"{node}.key"
    private.write_text(_run("wg", "genkey").stdout)
    private.chmod(0o600)
    public = _run("wg", "pubkey", input=private.read_text()).stdout.strip()
    return private, public


def _serve_on_mesh(pg: PgServer, ns: Namespaces, node: str, listen: str, hba: list[str]) -> None:
    """Restart the throwaway cluster inside the node's namespace, on the mesh address only."""
    (pg.data / "pg_hba.conf").write_text("local all postgres trust\n" + "\n".join(hba) + "\n")
    stop = pg.pg(str(pg_bin() / "pg_ctl"), "-D", str(pg.data), "-m", "fast", "-w", "stop")
    assert stop.returncode == 0, stop.stderr
    log = pg.run / "mesh.log"
    options = (f"-c listen_addresses={listen} -p {pg.port} -k {pg.run} -c fsync=off "
               f"{pg.tls_options()}")
    start = _run(*ns.exec(node, *pg.as_postgres(str(pg_bin() / "pg_ctl"), "-D", str(pg.data),
                                                 "-l", str(log), "-w", "-t", "30", "-o",
                                                 options, "start")), check=False, cwd=pg.run)
    assert start.returncode == 0, start.stdout + start.stderr + log.read_text()


def _psql(ns: Namespaces, node: str, pg: PgServer, host: str, user: str, db: str,
          password: str) -> subprocess.CompletedProcess[str]:
    return _run(*ns.exec(node, str(pg_bin() / "psql"), "-X", "-At", "-h", host, "-p",
                         str(pg.port), "-U", user, "-d", db, "-c",
                         "SELECT current_user || ' ' || host(inet_client_addr())"),
                check=False, env={**os.environ, "PGPASSWORD": password,
                                  "PGCONNECT_TIMEOUT": "5"})


def test_postgres_over_real_wireguard_between_namespaces(tmp_path: Path) -> None:
    _wireguard_go()
    primary, app = "pg-tokyo", "edge-tokyo"
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (key_primary, pub_primary), (key_app, pub_app) = (_keypair(keys_dir, primary),
                                                      _keypair(keys_dir, app))
    estate = _two_nodes({primary: pub_primary, app: pub_app})
    plan = mesh_plan(estate.env)
    hba = mesh_hba(estate.env, estate.services, plan)
    assert f"hostssl api svc_api_rw {plan.address(app)}/32 scram-sha-256" in hba

    with two_namespaces((primary, app)) as ns, throwaway_postgres("edgekit-mesh-") as pg:
        endpoints = dict(ns.public)  # what `tofu output mesh_endpoints` brings into CUE
        for node, key in ((primary, key_primary), (app, key_app)):
            _join(ns, node, plan, key, endpoints, tmp_path)
        with pg.connect("postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE api")
            conn.execute("CREATE DATABASE web")
            conn.execute("CREATE ROLE svc_api_rw LOGIN PASSWORD 'api-secret'")
            conn.execute("CREATE ROLE svc_web_ro LOGIN PASSWORD 'web-secret'")
        _serve_on_mesh(pg, ns, primary, plan.address(primary), hba)

        # the service's role, from its node, across the mesh
        deadline = time.monotonic() + TIMEOUT
        while True:
            done = _psql(ns, app, pg, plan.address(primary), "svc_api_rw", "api", "api-secret")
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the first handshake
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"svc_api_rw {plan.address(app)}"
        shown = _run(*ns.exec(app, "wg", "show", ns.interfaces[app], "latest-handshakes"))
        assert pub_primary in shown.stdout

        # pg_hba is per role: web's role may not open api's database
        wrong_db = _psql(ns, app, pg, plan.address(primary), "svc_web_ro", "api", "web-secret")
        assert wrong_db.returncode != 0
        assert "pg_hba.conf rejects connection" in wrong_db.stderr

        # outside the mesh: the primary's "public" address has no Postgres at all
        public = _psql(ns, app, pg, ns.public[primary], "svc_api_rw", "api", "api-secret")
        assert public.returncode != 0 and "Connection refused" in public.stderr

        # an address the primary's WireGuard does not route to a peer is dropped
        stranger = "10.100.0.99"
        _run(*ns.exec(app, "ip", "addr", "add", f"{stranger}/32", "dev", ns.interfaces[app]))
        probe = _run(*ns.exec(app, "python3", "-c",
                              "import socket,sys; s=socket.socket(); s.settimeout(3); "
                              f"s.bind(('{stranger}', 0)); "
                              f"sys.exit(s.connect_ex(('{plan.address(primary)}', {pg.port})))"),
                     check=False)
        assert probe.returncode != 0, "a connection from outside the mesh got through"
