"""Each preflight rule: a fixture that triggers it and one that passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.check.context import context_from_documents
from edgekit.check.engine import REGISTRY, Context, Finding, catalogue, run
from edgekit.cue.model import Estate, ManagedPgSpec, TunnelSpec
from tests.conftest import ROOT

ZONE_ID = "fedcba9876543210fedcba9876543210"
ACCOUNT = "0123456789abcdef0123456789abcdef"


def findings(rule_id: str, ctx: Context) -> list[Finding]:
    catalogue()
    return run(ctx, [REGISTRY[rule_id]])


def docs(**stacks: dict[str, Any]) -> Context:
    return context_from_documents({name: {"resource": res} for name, res in stacks.items()})


def one(rule_id: str, ctx: Context) -> Finding:
    found = findings(rule_id, ctx)
    assert len(found) == 1, found
    assert found[0].rule == rule_id
    return found[0]


@pytest.fixture(scope="module")
def prod() -> Estate:
    return Estate.load(ROOT, "prod", refresh=False)


def with_env(estate: Estate, **changes: Any) -> Estate:
    return attrs.evolve(estate, env=attrs.evolve(estate.env, **changes))


def estates(*items: Estate) -> Context:
    return Context(estates=items)


# --- EK100 schema and references ---------------------------------------------------------

SERVER = {"name": "edge-1", "server_type": "cx23", "image": "debian-12", "location": "fsn1"}


def test_ek100_unknown_attribute_and_dangling_reference() -> None:
    bad = docs(s={"hcloud_server": {"a": {**SERVER, "sise": 1},
                                    "b": {**SERVER, "name": "b",
                                          "user_data": "${random_id.nope.hex}"}}})
    found = findings("EK100", bad)
    messages = " | ".join(f.message for f in found)
    assert "sise" in messages
    assert "reference to random_id.nope, which is not in the stack" in messages
    assert {(f.address, f.pointer) for f in found} >= {
        ("hcloud_server.a", "$.sise"), ("hcloud_server.b", "$.user_data")}


def test_ek100_passes_a_valid_document() -> None:
    assert findings("EK100", docs(s={"hcloud_server": {"a": SERVER}})) == []


# --- EK101-EK103 network -----------------------------------------------------------------

def hcloud_fw(cidrs: list[str], port: str = "22") -> dict[str, Any]:
    return {"hcloud_firewall": {"fw": {"name": "fw", "rule": [
        {"direction": "in", "protocol": "tcp", "port": port, "source_ips": cidrs}]}}}


def test_ek101_world_open_ssh_is_an_error() -> None:
    found = one("EK101", docs(s=hcloud_fw(["0.0.0.0/0", "::/0"])))
    assert found.address == "hcloud_firewall.fw"
    assert found.pointer == "$.rule[0].source_ips"
    assert "0.0.0.0/0, ::/0 (the whole internet)" in found.message


@pytest.mark.parametrize("resources", [
    {"linode_firewall": {"fw": {"label": "fw1", "inbound_policy": "ACCEPT",
                                "outbound_policy": "ACCEPT"}}},
    {"vultr_firewall_rule": {"r": {"subnet": "0.0.0.0", "subnet_size": 0, "port": "22",
                                   "protocol": "tcp", "ip_type": "v4",
                                   "firewall_group_id": "x"}}},
    {"digitalocean_firewall": {"fw": {"name": "fw", "inbound_rule": [
        {"protocol": "tcp", "port_range": "22", "source_addresses": ["::/0"]}]}}},
])
def test_ek101_every_provider(resources: dict[str, Any]) -> None:
    assert one("EK101", docs(s=resources)).severity == "error"


def test_ek101_passes_closed_firewalls() -> None:
    assert findings("EK101", docs(s=hcloud_fw(["203.0.113.7/32"]))) == []


def test_ek102_host_bits_are_a_clear_error() -> None:
    found = one("EK102", docs(s=hcloud_fw(["203.0.113.7/24"])))
    assert "CIDR '203.0.113.7/24' has host bits set; the network is 203.0.113.0/24" in \
        found.message
    assert found.pointer == "$.rule[0].source_ips[0]"


def test_ek102_passes_networks() -> None:
    assert findings("EK102", docs(s=hcloud_fw(["203.0.113.0/24", "2001:db8::/32"]))) == []


@pytest.mark.parametrize(("resources", "expected"), [
    ({"vultr_firewall_rule": {"r": {"port": "1-65535", "protocol": "tcp"}}},
     "not in the provider's format: '22' or '1:65535'"),
    (hcloud_fw(["10.0.0.0/8"], port="1:65535"), "not in the provider's format"),
    (hcloud_fw(["10.0.0.0/8"], port="70000"), "out of range 1-65535"),
    (hcloud_fw(["10.0.0.0/8"], port="90-80"), "runs backwards"),
])
def test_ek103_port_range_formats(resources: dict[str, Any], expected: str) -> None:
    assert expected in one("EK103", docs(s=resources)).message


def test_ek103_passes_each_providers_own_format() -> None:
    ok = {**hcloud_fw(["10.0.0.0/8"], port="1-65535"),
          "vultr_firewall_rule": {"r": {"port": "1:65535", "protocol": "tcp"}},
          "linode_firewall": {"l": {"inbound": [{"ports": "22, 80, 1000-2000"}]}}}
    assert findings("EK103", docs(s=ok)) == []


def test_ek104_linode_firewall_rule_label_and_empty_lists() -> None:
    bad = {"linode_firewall": {"fw": {"label": "fw1", "inbound": [
        {"label": "r0", "action": "ACCEPT", "ipv4": ["10.0.0.0/8"], "ipv6": []}]}}}
    found = findings("EK104", docs(s=bad))
    assert sorted((f.pointer, f.message) for f in found) == [
        ("$.inbound[0].ipv6", "ipv6 is an empty list; the provider wants at least one "
         "address (or no ipv6 at all)"),
        ("$.inbound[0].label", "rule label 'r0' is 2 characters; expected 3-32")]
    ok = {"linode_firewall": {"fw": {"label": "fw1", "inbound": [
        {"label": "rule-0", "action": "ACCEPT", "ipv4": ["10.0.0.0/8"]}]}}}
    assert findings("EK104", docs(s=ok)) == []


# --- EK111 secrets -------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value", "why"), [
    ("STRIPE", "sk_live_abcdefghijklmnop", "a Stripe secret key"),
    ("AWS_ID", "AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
    ("CERT", "-----BEGIN RSA PRIVATE KEY-----\nMIIB", "a PEM block"),
    ("DB_PASSWORD", "hunter2", "its name says it is a secret"),
    ("SESSION_KEY", "abc", "its name says it is a secret"),
])
def test_ek111_secret_looking_env(prod: Estate, key: str, value: str, why: str) -> None:
    api = prod.services["api"]
    services = {**prod.services, "api": attrs.evolve(api, env={**api.env, key: value})}
    found = one("EK111", estates(attrs.evolve(prod, services=services)))
    assert why in found.message
    assert found.pointer == f"$.services.api.env.{key}"
    assert "secrets" in found.fix


def test_ek111_passes_plain_settings(prod: Estate) -> None:
    api = prod.services["api"]
    env = {**api.env, "OTEL_ENDPOINT": "http://127.0.0.1:4318", "REGION": "ap-northeast-1"}
    services = {**prod.services, "api": attrs.evolve(api, env=env)}
    assert findings("EK111", estates(attrs.evolve(prod, services=services))) == []


def test_ek112_random_looking_value_is_a_warning(prod: Estate) -> None:
    api = prod.services["api"]

    def with_blob(value: str) -> Context:
        services = {**prod.services, "api": attrs.evolve(api, env={**api.env, "BLOB": value})}
        return estates(attrs.evolve(prod, services=services))

    found = one("EK112", with_blob("q8Z3vLx0Rk2P9mW7tY4bN6cJ1hF5sD8a"))
    assert found.severity == "warning"
    assert "random-looking string" in found.message
    assert findings("EK112", with_blob("eu-central-1-production-cluster")) == []


# --- EK121-EK127 estate --------------------------------------------------------------------

def test_ek121_service_on_a_system_port(prod: Estate) -> None:
    services = {**prod.services, "api": attrs.evolve(prod.services["api"], port=4318)}
    found = findings("EK121", estates(attrs.evolve(prod, services=services)))
    assert found and all("already used by the log shipper's OTLP/HTTP input" in f.message
                         for f in found)
    assert found[0].pointer == "$.env.placement.edge-1[0]"


def test_ek121_postgres_port_on_the_postgres_node(prod: Estate) -> None:
    services = {**prod.services, "api": attrs.evolve(prod.services["api"], port=5432)}
    placement = {**prod.env.placement, "pg-tokyo": ("api",)}
    estate = with_env(attrs.evolve(prod, services=services), placement=placement)
    messages = [f.message for f in findings("EK121", estates(estate))]
    assert any("node 'pg-tokyo', already used by Postgres" in m for m in messages)


def test_ek121_two_services_on_one_port(prod: Estate) -> None:
    services = {**prod.services, "web": attrs.evolve(prod.services["web"], port=8080)}
    found = findings("EK121", estates(attrs.evolve(prod, services=services)))
    assert "already used by service 'api'" in found[0].message


def test_ek121_passes_the_reference_estate(prod: Estate) -> None:
    assert findings("EK121", estates(prod)) == []


def test_ek122_service_twice_on_a_node(prod: Estate) -> None:
    estate = with_env(prod, placement={**prod.env.placement, "edge-1": ("api", "api")})
    found = one("EK122", estates(estate))
    assert found.message == "service 'api' is placed twice on node 'edge-1'"
    assert findings("EK122", estates(prod)) == []


def test_ek123_placement_names_an_unknown_node(prod: Estate) -> None:
    estate = with_env(prod, placement={**prod.env.placement, "edge-9": ("api",)})
    found = one("EK123", estates(estate))
    assert "placement names node 'edge-9', which is not a node of environment 'prod'" in \
        found.message
    assert (found.address, found.pointer) == ("cue/export/prod.json", "$.env.placement.edge-9")
    assert findings("EK123", estates(prod)) == []


def test_ek124_placement_names_an_unknown_service(prod: Estate) -> None:
    estate = with_env(prod, placement={**prod.env.placement, "edge-1": ("api", "apii")})
    assert "given 'apii', which is not a service" in one("EK124", estates(estate)).message
    worker = with_env(prod, placement={**prod.env.placement, "edge-1": ("edge-worker",)})
    assert "a worker service" in one("EK124", estates(worker)).message
    assert findings("EK124", estates(prod)) == []


def test_ek125_tunnel_weight_for_a_node_without_services(prod: Estate) -> None:
    tunnel = TunnelSpec(strategy="per_node", weights={**prod.env.tunnel.weights,
                                                      "pg-tokyo": 10})
    found = one("EK125", estates(with_env(prod, tunnel=tunnel)))
    assert "'pg-tokyo' (a node of the environment) which runs no service" in found.message
    assert "answer only 404" in found.message
    assert findings("EK125", estates(prod)) == []


def test_ek127_postgres_needed_but_no_postgres_node(prod: Estate) -> None:
    nodes = {n: attrs.evolve(spec, roles=("edge",)) for n, spec in prod.env.nodes.items()}
    found = one("EK127", estates(with_env(prod, nodes=nodes)))
    assert "api, web need(s) Postgres, but no node of environment 'prod'" in found.message
    assert findings("EK127", estates(prod)) == []
    # a managed database (ADR 0012) runs on no node of ours
    managed = attrs.evolve(prod.env.postgres, kind="managed", managed=ManagedPgSpec(
        provider="vultr", region="nrt", plan="vultr-dbaas-startup-cc-1-55-2"))
    assert findings("EK127", estates(with_env(prod, nodes=nodes, postgres=managed))) == []


# --- EK131-EK133 between stacks --------------------------------------------------------------

def dns(name: str, proxied: bool = True) -> dict[str, Any]:
    return {"zone_id": ZONE_ID, "name": name, "type": "CNAME", "content": "x.example",
            "proxied": proxied, "ttl": 1}


def test_ek131_two_stacks_claim_one_hostname() -> None:
    found = findings("EK131", docs(
        a={"cloudflare_dns_record": {"r": dns("api.example.com")}},
        b={"cloudflare_workers_custom_domain": {"d": {"hostname": "API.example.com",
                                                      "zone_id": ZONE_ID}}}))
    assert len(found) == 2
    assert "hostname api.example.com is also managed by b:cloudflare_workers_custom_domain.d" \
        in found[0].message


def test_ek131_passes_distinct_hostnames() -> None:
    assert findings("EK131", docs(
        a={"cloudflare_dns_record": {"r": dns("api.example.com")}},
        b={"cloudflare_dns_record": {"r": dns("api-staging.example.com")}})) == []


def ruleset(phase: str) -> dict[str, Any]:
    return {"cloudflare_ruleset": {"waf": {"zone_id": ZONE_ID, "kind": "zone", "phase": phase,
                                           "name": "waf", "rules": []}}}


def test_ek132_zone_singleton_in_two_stacks() -> None:
    found = findings("EK132", docs(a=ruleset("http_ratelimit"), b=ruleset("http_ratelimit")))
    assert len(found) == 2
    assert "entrypoint ruleset http_ratelimit is also managed by b:cloudflare_ruleset.waf" in \
        found[0].message


def test_ek132_passes_other_phases() -> None:
    assert findings("EK132", docs(a=ruleset("http_ratelimit"),
                                  b=ruleset("http_request_firewall_managed"))) == []


def test_ek133_stack_manages_its_own_backend_bucket() -> None:
    def ctx(bucket: str) -> Context:
        return context_from_documents({"prod": {
            "terraform": {"backend": {"s3": {"bucket": "edgekit-state"}}},
            "resource": {"cloudflare_r2_bucket": {"b": {"account_id": ACCOUNT,
                                                        "name": bucket}}}}})

    assert "keeps its state in bucket 'edgekit-state' and also manages that bucket" in \
        one("EK133", ctx("edgekit-state")).message
    assert findings("EK133", ctx("edgekit-logs")) == []


# --- EK141-EK142 names -----------------------------------------------------------------------

@pytest.mark.parametrize(("type_name", "body", "expected"), [
    ("linode_instance", {"label": "a--b"}, "no '--'"),
    ("linode_instance", {"label": "x" * 51}, "is 51 characters; expected 3-50"),
    ("linode_firewall", {"label": "prod-nodes-edge-tokyo-firewall-xyz"}, "expected 3-32"),
    ("linode_vpc", {"label": "net_linode"}, "ASCII letters, digits and dashes"),
    ("hcloud_server", {"name": "edge_1"}, "a hostname (RFC 1123)"),
    ("hcloud_firewall", {"name": "f" * 129}, "is 129 characters; expected 1-128"),
    ("vultr_instance", {"hostname": "-pg"}, "a hostname (RFC 1123)"),
    ("digitalocean_droplet", {"name": "edge 1"}, "hostname characters"),
    ("cloudflare_r2_bucket", {"name": "Logs_Bucket"}, "lowercase letters"),
    ("cloudflare_workers_script", {"script_name": "Edge.Worker"}, "lowercase letters"),
])
def test_ek141_provider_name_rules(type_name: str, body: dict[str, Any], expected: str
                                   ) -> None:
    assert expected in one("EK141", docs(s={type_name: {"r": body}})).message


def test_ek141_passes_good_names() -> None:
    ok = {"linode_instance": {"a": {"label": "prod-edge_tokyo.1"}},
          "hcloud_server": {"b": {"name": "edge-1"}},
          "cloudflare_r2_bucket": {"c": {"name": "edgekit-logs"}},
          "cloudflare_workers_script": {"d": {"script_name": "prod-edge_worker"}}}
    assert findings("EK141", docs(s=ok)) == []


def test_ek142_two_paths_map_to_one_provider_name() -> None:
    ctx = docs(a={"hcloud_firewall": {"x": {"name": "edge-fw"}}},
               b={"hcloud_firewall": {"y": {"name": "Edge-FW"}}})
    found = findings("EK142", ctx)
    assert len(found) == 2
    assert "hcloud_firewall name 'edge-fw' (from a/hcloud_firewall.x) is also the name of " \
        "b/hcloud_firewall.y" in found[0].message
    assert findings("EK142", docs(a={"hcloud_firewall": {"x": {"name": "a-fw"}}},
                                  b={"hcloud_firewall": {"y": {"name": "b-fw"}}})) == []


# --- EK151 catalogue, EK161 DNS, EK171 lifecycle ------------------------------------------

def test_ek151_region_and_size_from_the_catalogue() -> None:
    found = findings("EK151", docs(s={"hcloud_server": {"a": {**SERVER, "location": "mars1",
                                                              "server_type": "cx99"}}}))
    assert [f.pointer for f in found] == ["$.location", "$.server_type"]
    assert "region 'mars1' is not offered by hetzner (catalog.py: ash, fsn1" in \
        found[0].message
    assert findings("EK151", docs(s={"hcloud_server": {"a": SERVER}})) == []


def test_ek161_proxied_hostname_two_labels_deep(prod: Estate) -> None:
    ctx = Context(stacks=docs(s={"cloudflare_dns_record": {
        "deep": dns("api.origin.edgekit.example"),
        "ok": dns("api-origin.edgekit.example"),
        "unproxied": dns("a.b.edgekit.example", proxied=False)}}).stacks, estates=(prod,))
    found = one("EK161", ctx)
    assert found.address == "cloudflare_dns_record.deep"
    assert "2 labels below the zone 'edgekit.example'" in found.message


def node_doc(user_data: str, ignore: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {**SERVER, "user_data": user_data}
    if ignore is not None:
        body["lifecycle"] = {"ignore_changes": ignore}
    return {"variable": {"deploy_revision": {"type": "string"}},
            "locals": {"boot": {"rev": "${var.deploy_revision}"}, "static": {"a": 1}},
            "resource": {"hcloud_server": {"n": body}}}


def test_ek171_user_data_through_a_local_to_the_deploy_revision() -> None:
    ctx = context_from_documents({"s": node_doc("${jsonencode(local.boot)}")})
    found = one("EK171", ctx)
    assert "user_data depends on var.deploy_revision, which changes on every deploy" in \
        found.message
    assert found.pointer == "$.user_data"


@pytest.mark.parametrize("document", [
    node_doc("${jsonencode(local.static)}"),
    node_doc("${jsonencode(local.boot)}", ignore=["user_data"]),
])
def test_ek171_passes_first_boot_only_user_data(document: dict[str, Any]) -> None:
    assert findings("EK171", context_from_documents({"s": document})) == []


def test_ek171_timestamp_is_per_run() -> None:
    ctx = context_from_documents({"s": node_doc("${timestamp()}")})
    assert "timestamp()" in one("EK171", ctx).message


# --- the catalogue -------------------------------------------------------------------------

def test_every_rule_has_a_source_a_fix_and_a_test() -> None:
    text = "".join(p.read_text() for p in Path(__file__).parent.glob("test_check_*.py"))
    for entry in catalogue():
        assert entry.title and entry.fix and entry.source, entry.id
        assert f'"{entry.id}"' in text, f"no test triggers {entry.id}"


def test_a_crashing_rule_becomes_a_finding_not_a_traceback() -> None:
    from edgekit.check.engine import Rule

    def broken(ctx: Context) -> list[Any]:
        raise KeyError("boom")

    entry = Rule(id="EK999", title="t", severity="error", source="s", fix="f",
                 concern="test", func=broken)
    found = run(Context(), [entry])
    assert "the rule could not run on this input (KeyError: 'boom')" in found[0].message



def test_ek105_enum_values_from_the_schema_and_the_provider_sources() -> None:
    bad = {"cloudflare_dns_record": {"r": {**dns("a.example.com"), "type": "NOPE"}},
           "linode_firewall": {"fw": {"label": "fw1", "inbound_policy": "MAYBE"}},
           "cloudflare_ruleset": {"rs": {"zone_id": ZONE_ID, "kind": "zone",
                                         "phase": "http_ratelimit", "name": "x",
                                         "rules": [{"action": "explode", "expression": "t"}]}}}
    found = {(f.address, f.pointer): f.message for f in findings("EK105", docs(s=bad))}
    assert found[("cloudflare_dns_record.r", "$.type")].startswith(
        "type 'NOPE' is not one of A, AAAA, CNAME")
    assert found[("linode_firewall.fw", "$.inbound_policy")] == \
        "inbound_policy 'MAYBE' is not one of ACCEPT, DROP"
    assert "rules.action 'explode' is not one of block" in \
        found[("cloudflare_ruleset.rs", "$.rules[0].action")]
    ok = {"cloudflare_dns_record": {"r": dns("a.example.com")},
          "linode_firewall": {"fw": {"label": "fw1", "inbound_policy": "DROP"}}}
    assert findings("EK105", docs(s=ok)) == []


def test_ek126_tunnel_that_serves_only_404() -> None:
    def tunnel(*ingress: dict[str, str]) -> Context:
        return docs(s={"cloudflare_zero_trust_tunnel_cloudflared_config": {"t": {
            "account_id": ACCOUNT, "tunnel_id": "x", "config": {"ingress": list(ingress)}}}})

    found = one("EK126", tunnel({"service": "http_status:404"}))
    assert "every request gets the catch-all (http_status:404)" in found.message
    assert found.pointer == "$.config.ingress"
    assert findings("EK126", tunnel({"hostname": "api.example.com",
                                     "service": "http://127.0.0.1:8080"},
                                    {"service": "http_status:404"})) == []
