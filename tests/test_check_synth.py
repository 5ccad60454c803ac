"""The rules inside a synth: errors stop the write, suppressions are honoured and reported,
and a synth of some stacks still compares them with the others' last output."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit import App, LocalState, Resource, Stack, SynthError
from edgekit.core.errors import ConstructError

ZONE_ID = "fedcba9876543210fedcba9876543210"


def app_with(outdir: Path, hostnames: dict[str, str]) -> App:
    app = App(outdir=outdir, check_schemas=False)
    for name, host in hostnames.items():
        stack = Stack(app, name, state=LocalState(), encryption=None)
        Resource(stack, "dns", type="cloudflare_dns_record", config={
            "zone_id": ZONE_ID, "name": host, "type": "CNAME", "content": "x.example",
            "proxied": True, "ttl": 1})
    return app


def test_an_error_rule_stops_the_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(SynthError, match=r"\[b/dns\] cloudflare_dns_record.dns: EK131 hostname "
                       r"api.example.com is also managed by a:cloudflare_dns_record.dns"):
        app_with(out, {"a": "api.example.com", "b": "api.example.com"}).synth()
    assert not out.exists()


def test_a_suppression_is_honoured_and_reported(tmp_path: Path) -> None:
    app = app_with(tmp_path / "out", {"a": "api.example.com", "b": "api.example.com"})
    for stack in app.stacks:
        stack.node.suppress("EK131", reason="migrating the record from a to b this week")
    report = app.synth()
    assert report.suppressed == ("EK131 suppressed for 2 finding(s) (`edgekit check` lists "
                                 "them): migrating the record from a to b this week",)


def test_a_synth_of_one_stack_compares_it_with_the_others_last_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    app_with(out, {"a": "api.example.com", "b": "www.example.com"}).synth()
    before = (out / "stacks/a/cdk.tf.json").read_bytes()
    clash = app_with(out, {"a": "api.example.com", "b": "api.example.com"})
    with pytest.raises(SynthError, match=r"\[b/dns\] .*EK131 hostname api.example.com is "
                       r"also managed by a:cloudflare_dns_record.dns"):
        clash.synth(["b"])
    assert (out / "stacks/a/cdk.tf.json").read_bytes() == before
    assert b"www.example.com" in (out / "stacks/b/cdk.tf.json").read_bytes()


def test_suppress_needs_a_rule_id_and_a_reason(tmp_path: Path) -> None:
    app = app_with(tmp_path / "out", {"a": "api.example.com"})
    with pytest.raises(ConstructError, match=r"\[a\] suppress\('EK131'\) needs a reason"):
        app.stack("a").node.suppress("EK131", reason="  ")
    with pytest.raises(ConstructError, match=r"expected a rule id like 'EK101'"):
        app.stack("a").node.suppress("131", reason="x")
