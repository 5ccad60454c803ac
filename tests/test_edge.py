"""The Cloudflare edge: Tunnel (both strategies), EdgeWorker, WAF and rate limits, Hyperdrive,
R2 — as synthesized for the reference estate."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit import App, ConstructError, SynthError
from edgekit.constructs.tunnel import Tunnel
from edgekit.cue.generate import worker_origins
from edgekit.cue.model import Estate
from stacks import make_app
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    built = make_app(outdir=tmp_path_factory.mktemp("edge") / "out")
    built.disable_schema_check()
    built.synth()
    return built


def document(app: App, stack: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((app.outdir / f"stacks/{stack}/cdk.tf.json").read_text())
    return loaded


def of_type(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["resource"].get(kind, {})
    return found


def test_replicas_one_tunnel_with_ingress_per_service_and_404_last(app: App) -> None:
    doc = document(app, "staging")
    tunnels = of_type(doc, "cloudflare_zero_trust_tunnel_cloudflared")
    assert set(tunnels) == {"edge_tunnel", "edge_hyperdrive_tunnel"}
    assert tunnels["edge_tunnel"]["config_src"] == "cloudflare"
    assert tunnels["edge_tunnel"]["tunnel_secret"] == "${random_id.edge_tunnel_secret.b64_std}"
    config = of_type(doc, "cloudflare_zero_trust_tunnel_cloudflared_config")["edge_tunnel_config"]
    assert config["config"]["ingress"] == [
        {"hostname": "api-origin-staging.edgekit.example", "service": "http://127.0.0.1:8080"},
        {"hostname": "web-origin-staging.edgekit.example", "service": "http://127.0.0.1:8081"},
        {"service": "http_status:404"},
    ]
    dns = of_type(doc, "cloudflare_dns_record")["edge_tunnel_dns_api"]
    assert (dns["type"], dns["proxied"], dns["content"]) == (
        "CNAME", True, "${cloudflare_zero_trust_tunnel_cloudflared.edge_tunnel.id}"
        ".cfargotunnel.com")
    secrets = doc["locals"]["nodes_staging_1_boot"]["secrets"]
    assert secrets["tunnel_token"] == (
        "${sensitive(data.cloudflare_zero_trust_tunnel_cloudflared_token.edge_tunnel_token"
        ".token)}")


def test_per_node_tunnels_and_a_weighted_load_balancer(app: App) -> None:
    doc = document(app, "prod")
    tunnels = of_type(doc, "cloudflare_zero_trust_tunnel_cloudflared")
    assert {"edge_tunnel_edge_1", "edge_tunnel_edge_2", "edge_tunnel_edge_tokyo"} <= set(tunnels)
    pool = of_type(doc, "cloudflare_load_balancer_pool")["edge_tunnel_lb_pool_api"]
    assert [(o["name"], o["weight"], o["header"]["host"]) for o in pool["origins"]] == [
        ("edge-1", 0.4, ["api-edge-1-origin.edgekit.example"]),
        ("edge-2", 0.4, ["api-edge-2-origin.edgekit.example"]),
        ("edge-tokyo", 0.2, ["api-edge-tokyo-origin.edgekit.example"]),
    ]
    assert pool["origins"][0]["address"] == (
        "${cloudflare_zero_trust_tunnel_cloudflared.edge_tunnel_edge_1.id}.cfargotunnel.com")
    monitor = of_type(doc, "cloudflare_load_balancer_monitor")["edge_tunnel_lb_monitor_api"]
    assert (monitor["type"], monitor["path"], monitor["header"]["Host"]) == (
        "https", "/healthz", ["api-origin.edgekit.example"])
    assert monitor["header"]["CF-Access-Client-Id"] == [
        "${cloudflare_zero_trust_access_service_token.edge_tunnel_access_service_token"
        ".client_id}"]
    balancer = of_type(doc, "cloudflare_load_balancer")["edge_tunnel_lb_balancer_api"]
    assert balancer["default_pools"] == [
        "${cloudflare_load_balancer_pool.edge_tunnel_lb_pool_api.id}"]


def test_worker_bindings_match_the_generated_wrangler_config(app: App) -> None:
    for stack in ("prod", "staging"):
        doc = document(app, stack)
        script = of_type(doc, "cloudflare_workers_script")["edge_worker"]
        bindings = {b["name"]: b for b in script["bindings"]}
        estate = Estate.load(ROOT, stack, check_fresh=False)
        assert json.loads(bindings["ORIGINS"]["text"]) == worker_origins(estate)
        assert "PG" not in bindings  # until Postgres answers (tests/test_first_apply.py)
        assert bindings["SESSIONS"]["type"] == "kv_namespace"
        asset = app.outdir / f"stacks/{stack}" / script["content_file"]
        assert script["content_sha256"] == hashlib.sha256(asset.read_bytes()).hexdigest()
        assert asset.read_bytes() == (ROOT / "services/edge-worker/src/index.js").read_bytes()
        assert script["main_module"] == "index.js"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", script["compatibility_date"])
    domains = of_type(document(app, "prod"), "cloudflare_workers_custom_domain")
    assert sorted(d["hostname"] for d in domains.values()) == [
        "api.edgekit.example", "edgekit.example", "www.edgekit.example"]


def test_waf_and_rate_limits_per_service(app: App) -> None:
    rulesets = of_type(document(app, "zone"), "cloudflare_ruleset")
    waf = rulesets["security_waf"]
    assert waf["phase"] == "http_request_firewall_managed"
    assert waf["rules"][0]["action"] == "execute"
    limits = rulesets["security_rate_limits"]["rules"]
    assert [(r["expression"], r["ratelimit"]["requests_per_period"]) for r in limits][:2] == [
        ('(http.host in {"api.edgekit.example"})', 600),
        ('(http.host in {"www.edgekit.example"})', 1200),
    ]


def test_hyperdrive_reaches_postgres_through_an_access_protected_tunnel(tmp_path: Path) -> None:
    from tests.test_first_apply import edge_doc, observed

    doc = edge_doc(tmp_path, observed(Estate.load(ROOT, "prod", check_fresh=False), "10.2.0.3"))
    origin = of_type(doc, "cloudflare_hyperdrive_config")["edge_hyperdrive"]["origin"]
    assert origin["host"] == "pg-origin.edgekit.example"
    assert origin["user"] == "svc_web_ro" and origin["database"] == "web"
    assert origin["password"] == "${random_password.nodes_postgres_password_web.result}"
    assert origin["access_client_secret"].startswith(
        "${cloudflare_zero_trust_access_service_token.")
    ingress = of_type(doc, "cloudflare_zero_trust_tunnel_cloudflared_config")[
        "edge_hyperdrive_tunnel_config"]["config"]["ingress"]
    assert ingress[0] == {"hostname": "pg-origin.edgekit.example",
                          "service": "tcp://10.100.0.1:5432"}  # its mesh address
    assert "pg_tunnel_token" in doc["locals"]["nodes_pg_tokyo_boot"]["secrets"]


def test_hyperdrive_verifies_the_primarys_own_authority(tmp_path: Path) -> None:
    """Postgres admits only TLS logins with a certificate of the node's authority (ADR 0025):
    Hyperdrive pins that authority and checks the hostname; without it, no config at all
    (`require` would check WebPKI and fail against the node's authority)."""
    from tests.test_first_apply import TEST_CA, edge_doc, observed

    estate = Estate.load(ROOT, "prod", check_fresh=False)
    doc = edge_doc(tmp_path / "with", observed(estate, "10.2.0.3"))
    config = of_type(doc, "cloudflare_hyperdrive_config")["edge_hyperdrive"]
    assert config["mtls"] == {
        "ca_certificate_id": "${cloudflare_mtls_certificate.edge_hyperdrive_server_ca.id}",
        "sslmode": "verify-full"}
    ca = of_type(doc, "cloudflare_mtls_certificate")["edge_hyperdrive_server_ca"]
    assert ca["ca"] is True and ca["certificates"] == TEST_CA
    assert "private_key" not in ca
    without = edge_doc(tmp_path / "without", observed(estate, "10.2.0.3", ca=None))
    assert not of_type(without, "cloudflare_hyperdrive_config")
    assert not of_type(without, "cloudflare_mtls_certificate")


def test_log_sink_bucket_retention_and_write_only_credentials(app: App) -> None:
    doc = document(app, "prod")
    lifecycle = of_type(doc, "cloudflare_r2_bucket_lifecycle")["edge_logs_lifecycle"]
    assert lifecycle["rules"][0]["delete_objects_transition"]["condition"] == {
        "type": "Age", "max_age": 30 * 86400}
    token = of_type(doc, "cloudflare_account_token")["edge_logs_writer"]
    assert json.loads(token["policies"][0]["resources"]) == {
        "com.cloudflare.edge.r2.bucket.0123456789abcdef0123456789abcdef_default_edgekit-logs":
        "*"}
    for node in ("edge_1", "edge_2", "edge_tokyo", "pg_tokyo"):
        boot = doc["locals"][f"nodes_{node}_boot"]
        assert boot["log_sink"]["bucket"] == "edgekit-logs"
        assert boot["secrets"]["log_sink_secret_access_key"] == (
            "${sha256(cloudflare_account_token.edge_logs_writer.value)}")
    assert "edge_state_bucket" not in of_type(doc, "cloudflare_r2_bucket")  # bootstrap's


SECRET_KEYS = re.compile(r"(password|secret|token|api_key)", re.I)


def _walk(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _walk(v, f"{path}[{i}]")]
    return [(path, value)]


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_no_secret_is_written_in_plain_text(app: App, stack: str) -> None:
    for path, value in _walk(document(app, stack), "$"):
        last = path.rsplit(".", 1)[-1]
        if SECRET_KEYS.search(last) and isinstance(value, str) and last != "comment":
            assert value.startswith("${"), f"{path} = {value!r} is a literal secret"


def test_tunnel_weights_for_unknown_nodes_are_refused(tmp_path: Path) -> None:
    from edgekit import LocalState, Stack
    from edgekit.constructs.node import VpsNode

    estate = Estate.load(ROOT, "prod", check_fresh=False)
    app = App(outdir=tmp_path / "out", check_schemas=False)
    stack = Stack(app, "prod", state=LocalState())
    node = VpsNode(stack, "edge-1", provider="hetzner", region="fsn1", size="small")
    Tunnel(stack, "tunnel", zone=estate.env.zone, services=estate.services, nodes=[node],
           strategy="per_node", weights={"edge-9": 10})
    with pytest.raises(SynthError, match=r"\[prod/tunnel\] EK125 tunnel weight for node "
                       r"'edge-9', which runs no service behind this tunnel.* @ "
                       r"\$\.weights\.edge-9"):
        app.synth_results()


def test_every_node_gets_vector_with_otel_in_and_r2_out(app: App) -> None:
    doc = document(app, "prod")
    vector = doc["locals"]["nodes_edge_1_boot"]["vector"]
    source = vector["sources"]["otel"]
    assert (source["type"], source["grpc"]["address"], source["http"]["address"]) == (
        "opentelemetry", "127.0.0.1:4317", "127.0.0.1:4318")
    sink = vector["sinks"]["r2_logs"]
    assert sink["inputs"] == ["otel.logs"] and sink["type"] == "aws_s3"
    assert (sink["region"], sink["force_path_style"], sink["compression"]) == (
        "auto", True, "gzip")
    assert sink["key_prefix"] == "otel/prod/edge-1/date=%Y-%m-%d/hour=%H/"
    assert sink["encoding"] == {"codec": "json"}
    assert sink["framing"] == {"method": "newline_delimited"}
    assert sink["buffer"]["type"] == "disk" and sink["buffer"]["max_size"] >= 268435488
    assert sink["buffer"]["when_full"] == "block"
    assert "auth" not in sink and "access_key_id" not in json.dumps(sink)
    assert sink["endpoint"] == "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"


def _with_services(estate: Estate, **changes: Any) -> Estate:
    services = dict(estate.services)
    for name, fields in changes.items():
        services[name] = attrs.evolve(services[name], **fields)
    return attrs.evolve(estate, services=services)


@pytest.mark.parametrize(("change", "message"), [
    ({"api": {"hostnames": ("api.elsewhere.example",)}},
     r"^\[prod/worker\] hostname 'api.elsewhere.example' of service 'api' is outside the zone "
     r"'edgekit.example'"),
    ({"web": {"hostnames": ("api.edgekit.example",)}},
     r"^\[prod/worker\] hostname 'api.edgekit.example' is claimed by two services: api and web"),
])
def test_worker_hostname_errors(change: dict[str, Any], message: str, tmp_path: Path) -> None:
    from edgekit import LocalState, Stack
    from edgekit.constructs.edge_worker import EdgeWorker

    estate = _with_services(Estate.load(ROOT, "prod", check_fresh=False), **change)
    app = App(outdir=tmp_path / "out", check_schemas=False)
    stack = Stack(app, "prod", state=LocalState())
    with pytest.raises(ConstructError, match=message):
        EdgeWorker(stack, "worker", zone=estate.env.zone, services=estate.services,
                   script=ROOT / "services/edge-worker/src/index.js", origins={})
    assert stack.node.children == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strategy": "per_node", "weights": {"edge-1": 0}},
     r"every node has weight 0: nothing could receive traffic"),
    ({"strategy": "per_node", "weights": {"edge-1": -5}},
     r"#Tunnel: -5 is out of range 0-100 @ \$\.weights\.edge-1"),
    ({"strategy": "replicas", "nodes": 26},
     r"26 replicas, but a tunnel allows at most 25 cloudflared connectors"),
    ({"strategy": "replicas", "portless": True},
     r"service\(s\) without a port cannot be served through the tunnel: api"),
])
def test_tunnel_bad_input(kwargs: dict[str, Any], message: str, tmp_path: Path) -> None:
    from edgekit import LocalState, Stack
    from edgekit.constructs.node import VpsNode

    estate = Estate.load(ROOT, "prod", check_fresh=False)
    services = estate.services
    if kwargs.pop("portless", False):
        services = _with_services(estate, api={"port": None}).services
    app = App(outdir=tmp_path / "out", check_schemas=False)
    stack = Stack(app, "prod", state=LocalState())
    count = kwargs.pop("nodes", 1)
    nodes = [VpsNode(stack, f"edge-{i + 1}", provider="hetzner", region="fsn1", size="small")
             for i in range(count)]
    with pytest.raises(ConstructError, match=message):
        Tunnel(stack, "tunnel", zone=estate.env.zone, services=services, nodes=nodes,
               **kwargs)
    assert stack.node.try_find_child("tunnel") is None


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_origins_are_reachable_only_with_the_workers_access_token(app: App, stack: str) -> None:
    """Origin hostnames were proxied and open: anyone could skip the Worker, its rate limits
    and its cache, and they were two labels deep, beyond Universal SSL (ADR 0009)."""
    doc = document(app, stack)
    zone = "edgekit.example"
    origins = sorted(r["name"] for r in of_type(doc, "cloudflare_dns_record").values()
                     if r["comment"] == "edgekit tunnel origin")
    assert origins
    for host in origins:  # one label below the zone: the zone's certificate covers it
        assert host.endswith(f".{zone}") and "." not in host[: -len(zone) - 1], host
        assert "-origin" in host
    app_ = of_type(doc, "cloudflare_zero_trust_access_application")["edge_tunnel_access"]
    covered = {d["uri"] for d in app_["destinations"]}
    assert set(origins) <= covered
    balancers = {b["name"] for b in of_type(doc, "cloudflare_load_balancer").values()}
    assert balancers <= covered
    policy = of_type(doc, "cloudflare_zero_trust_access_policy")["edge_tunnel_access_policy"]
    assert policy["decision"] == "non_identity"
    assert policy["include"] == [{"service_token": {"token_id": (
        "${cloudflare_zero_trust_access_service_token.edge_tunnel_access_service_token.id}")}}]
    bindings = {b["name"]: b for b in
                of_type(doc, "cloudflare_workers_script")["edge_worker"]["bindings"]}
    assert bindings["ORIGIN_ACCESS_CLIENT_SECRET"]["type"] == "secret_text"
    assert bindings["ORIGIN_ACCESS_CLIENT_SECRET"]["text"] == (
        "${cloudflare_zero_trust_access_service_token.edge_tunnel_access_service_token"
        ".client_secret}")
    origins_var = json.loads(bindings["ORIGINS"]["text"])
    assert {o["url"][len("https://"):] for os_ in origins_var.values() for o in os_} \
        == set(origins)
