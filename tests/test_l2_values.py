"""The plain values the L2 constructs take (ADR 0019): CloudflareZone's hostname rules, the
CUE model's services being these very classes, and the Cloudflare provider each Cloudflare
construct declares once per stack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgekit import (
    App,
    CloudflareZone,
    ConstructError,
    LocalState,
    Provider,
    R2Bucket,
    Service,
    Stack,
    SynthError,
    Tunnel,
    Variable,
    VpsNode,
)
from edgekit.constructs.values import checked_services
from edgekit.cue.model import Estate
from edgekit.schema.props import PropsError
from edgekit.testing import synth
from tests.conftest import ROOT

ZONE = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
                      environment="staging", host_label="staging")


@pytest.mark.parametrize(("host", "expected"), [
    ("example.com", "staging.example.com"),
    ("api.example.com", "api.staging.example.com"),
    ("a.b.example.com", "a.b.staging.example.com"),
])
def test_public_hostnames_carry_the_label_before_the_zone(host: str, expected: str) -> None:
    assert ZONE.public_hostname(host) == expected


def test_a_hostname_outside_the_zone_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape(
            "hostname 'api.example.org' is not in the zone 'example.com' of env 'staging'")):
        ZONE.public_hostname("api.example.org")


def test_origin_hostnames_are_one_label_below_the_zone() -> None:
    assert ZONE.origin_hostname("api") == "api-origin-staging.example.com"
    assert ZONE.origin_hostname("api", "edge-1") == "api-edge-1-origin-staging.example.com"
    bare = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
                          environment="prod")
    assert bare.origin_hostname("pg") == "pg-origin.example.com"


def test_the_cue_estate_is_built_from_the_l2_values() -> None:
    estate = Estate.load(ROOT, "staging", check_fresh=False)
    assert all(type(s) is Service for s in estate.services.values())
    zone = estate.env.zone
    assert (zone.environment, zone.zone, zone.host_label) == (
        "staging", estate.env.cloudflare.zone, estate.env.host_label)
    assert estate.env.origin_hostname("api") == zone.origin_hostname("api")


def _stack(tmp_path: Path) -> Stack:
    return Stack(App(outdir=tmp_path / "out", check_schemas=False), "prod",
                 state=LocalState(), encryption=None)


def test_cloudflare_constructs_declare_one_provider_per_stack(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    node = VpsNode(stack, "edge-1", provider="hetzner", region="nbg1", size="small")
    Tunnel(stack, "tunnel", zone=ZONE, nodes=[node],
           services={"api": Service(name="api", port=8080)})
    R2Bucket(stack, "uploads", account_id="0" * 32, name="prod-uploads")
    document = synth(stack)
    assert document["provider"]["cloudflare"] == [
        {"api_token": "${var.cloudflare_api_token}"}]
    assert document["variable"]["cloudflare_api_token"]["sensitive"] is True


def test_a_cloudflare_provider_the_user_declared_is_kept(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    token = Variable(stack, "cf_token", type="string", sensitive=True)
    Provider(stack, "cloudflare", type="cloudflare", config={"api_token": token.ref()})
    R2Bucket(stack, "uploads", account_id="0" * 32, name="prod-uploads")
    document = synth(stack)
    assert document["provider"]["cloudflare"] == [{"api_token": "${var.cf_token}"}]
    assert "cloudflare_api_token" not in document["variable"]


def test_a_failed_cloudflare_construct_declares_nothing(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    node = VpsNode(stack, "edge-1", provider="hetzner", region="nbg1", size="small")
    with pytest.raises(ConstructError, match="without a port"):
        Tunnel(stack, "tunnel", zone=ZONE, nodes=[node],
               services={"api": Service(name="api")})
    assert stack.node.try_find_child("cloudflare") is None
    assert stack.node.try_find_child("cloudflare_api_token") is None


def test_tunnel_placement_defaults_to_every_service_on_every_node(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    nodes = [VpsNode(stack, n, provider="hetzner", region="nbg1", size="small")
             for n in ("edge-1", "edge-2")]
    services = {n: Service(name=n, port=p) for n, p in (("api", 8080), ("web", 8081))}
    everywhere = Tunnel(stack, "tunnel", zone=ZONE, nodes=nodes, services=services,
                        strategy="per_node")
    assert {s: [o["node"] for o in origins]
            for s, origins in everywhere.origins_by_service().items()} == {
        "api": ["edge-1", "edge-2"], "web": ["edge-1", "edge-2"]}
    placed = Tunnel(stack, "placed", zone=ZONE, nodes=nodes, services=services,
                    strategy="per_node", placement={"edge-1": ["api"], "edge-2": ["web"]})
    assert {s: [o["node"] for o in origins]
            for s, origins in placed.origins_by_service().items()} == {
        "api": ["edge-1"], "web": ["edge-2"]}


def test_services_given_by_hand_are_checked_against_cue_service(tmp_path: Path) -> None:
    """A Service a user builds is held to CUE's #Service, like the CUE estate's are."""
    stack = _stack(tmp_path)
    node = VpsNode(stack, "edge-1", provider="hetzner", region="nbg1", size="small")
    with pytest.raises(ConstructError) as err:
        Tunnel(stack, "tunnel", zone=ZONE, nodes=[node], services={
            "api": Service(name="API", port=70000, hostnames=("api.example.com",)),
            "web": Service(name="web", port=8081, health_path="healthz")})
    assert str(err.value).splitlines()[1:] == [
        "  [prod/tunnel] #Service: service 'API' is given under the name 'api'; use its own "
        "name @ $.services.api",
        '  [prod/tunnel] #Service: "API" is not a name: a lowercase letter, then lowercase '
        "letters, digits and '-', at most 63 characters (e.g. 'edge-1') @ $.services.api.name",
        "  [prod/tunnel] #Service: 70000 is out of range 1-65535 @ $.services.api.port",
        '  [prod/tunnel] #Service: expected "/healthz", got "healthz" '
        "@ $.services.web.health_path",
    ]
    assert stack.node.try_find_child("tunnel") is None


def test_a_placement_as_a_string_is_refused(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    node = VpsNode(stack, "edge-1", provider="hetzner", region="nbg1", size="small")
    message = "placement must be a list of strings, got the string 'api'"
    with pytest.raises(ConstructError, match=re.escape(f"[prod/tunnel] {message}")):
        Tunnel(stack, "tunnel", zone=ZONE, nodes=[node], placement={"edge-1": "api"},
               services={"api": Service(name="api", port=8080)})


def test_a_placement_naming_unknown_services_is_found_at_synth(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    node = VpsNode(stack, "edge-1", provider="hetzner", region="nbg1", size="small")
    Tunnel(stack, "tunnel", zone=ZONE, nodes=[node], placement={"edge-1": ["api", "shop"]},
           services={"api": Service(name="api", port=8080)})
    with pytest.raises(SynthError) as raised:
        stack.node.root.synth_results()  # type: ignore[attr-defined]
    (problem,) = raised.value.problems
    assert (problem.path, problem.pointer) == ("prod/tunnel", "$.placement.edge-1[1]")
    assert problem.message.startswith("EK124 node 'edge-1' is given 'shop', which is not a "
                                      "service (services that run on nodes: api)")


@pytest.mark.parametrize(("host", "expected"), [
    ("shöp.example.com", '"shöp.example.com" is an internationalised hostname; write its '
                         'ASCII (punycode) form "xn--shp-tna.example.com"'),
    ("API.example.com", '"API.example.com" is not lowercase; write "api.example.com"'),
    ("-shop.example.com", '"-shop.example.com" is not a hostname: lowercase letters, digits '
                          "and '-' in dot-separated labels"),
])
def test_a_bad_hostname_gets_a_message_about_hostnames(host: str, expected: str) -> None:
    """Issue 23: a message about hostnames, never the regular expression."""
    with pytest.raises(PropsError) as err:
        checked_services("prod/worker", {"shop": Service(name="shop", port=1,
                                                         hostnames=(host,))})
    (problem,) = err.value.problems
    assert problem.pointer == "$.services.shop.hostnames[0]"
    assert problem.message.startswith(expected), problem.message
    assert "^(" not in problem.message and "[a-z" not in problem.message
