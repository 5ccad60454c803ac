"""Hetzner firewalls do not flap (issue 24): the node's firewall is attached by the server at
creation and the mesh firewall by its hcloud_firewall_attachment, and the server ignores what
the API reports in firewall_ids afterwards, so neither owner undoes the other. EK209 checks
it over the JSON; the provider source it rests on is in the rule's source."""

from __future__ import annotations

from typing import Any

import pytest

from edgekit.check.context import context_from_documents
from edgekit.check.engine import REGISTRY, run
from stacks import make_app


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    app = make_app(outdir=tmp_path_factory.mktemp("owners") / "out")
    app.disable_schema_check()
    return {r.stack.name: r.document for r in app.synth_results(["prod", "staging"])}


def test_hetzner_mesh_nodes_have_one_owner_per_firewall_attachment(
        documents: dict[str, Any]) -> None:
    prod = documents["prod"]["resource"]
    attachments = prod["hcloud_firewall_attachment"]
    assert set(attachments) == {"nodes_mesh_edge_1_attachment", "nodes_mesh_edge_2_attachment"}
    for name in ("nodes_edge_1", "nodes_edge_2"):
        server = prod["hcloud_server"][name]
        assert server["firewall_ids"] == [f"${{hcloud_firewall.{name}_firewall.id}}"]
        assert server["ignore_remote_firewall_ids"] is True, name
    found = run(context_from_documents(documents), [REGISTRY["EK209"]])
    assert found == [], [str(f) for f in found]


def test_the_flapping_shape_is_refused() -> None:
    document: dict[str, Any] = {"resource": {
        "hcloud_server": {"a": {"firewall_ids": ["${hcloud_firewall.node.id}"]}},
        "hcloud_firewall_attachment": {
            "mesh": {"firewall_id": "${hcloud_firewall.mesh.id}",
                     "server_ids": ["${hcloud_server.a.id}"]},
            "again": {"firewall_id": "${hcloud_firewall.mesh.id}",
                      "server_ids": ["${hcloud_server.b.id}"]}}}}
    found = run(context_from_documents({"s": document}), [REGISTRY["EK209"]])
    by_address = {f.address: f.message for f in found}
    assert by_address["hcloud_firewall_attachment.mesh"].startswith(
        "${hcloud_firewall.mesh.id} is attached by hcloud_firewall_attachment.again already")
    assert by_address["hcloud_server.a"].startswith(
        "lists firewall_ids and is also attached to a firewall by "
        "hcloud_firewall_attachment.mesh: every plan would remove that firewall")
    fixed = {**document["resource"]["hcloud_server"]["a"], "ignore_remote_firewall_ids": True}
    document["resource"]["hcloud_server"]["a"] = fixed
    del document["resource"]["hcloud_firewall_attachment"]["again"]
    assert run(context_from_documents({"s": document}), [REGISTRY["EK209"]]) == []
