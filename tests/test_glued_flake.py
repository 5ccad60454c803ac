"""GluedFlake: the construct's checks, each error naming the construct path exactly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit import App, ConstructError, LocalState, Stack, SynthError
from edgekit.constructs.glued_flake import GluedFlake
from edgekit.cue.model import Estate
from edgekit.nix.compose import compose_estate
from edgekit.schema.props import PropsError
from tests.conftest import ROOT


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    app = App(outdir=tmp_path / "out", check_schemas=False)
    return Stack(app, "prod", state=LocalState(), encryption=None)


@pytest.fixture(scope="module")
def estate() -> Estate:
    return Estate.load(ROOT, "prod", check_fresh=False)


def _of(estate: Estate) -> dict[str, Any]:
    """What the estate layer hands a GluedFlake: the services and the env's placement."""
    return {"services": estate.services, "placement": estate.env.placement}


def test_the_reference_services_are_glued(stack: Stack, estate: Estate) -> None:
    api = GluedFlake(stack, "api", path="services/api", root=ROOT, **_of(estate))
    web = GluedFlake(stack, "web", path="services/web", root=ROOT, **_of(estate))
    assert api.flake == ROOT / "services" / "api" / "flake.nix"
    assert (api.props.service, api.props.path, api.port) == ("api", "services/api", 8080)
    assert api.nodes == web.nodes == ["edge-1", "edge-2", "edge-tokyo"]
    composed = compose_estate(estate)  # what nix/compose.nix runs on each node
    assert sorted(n for n, node in composed.items() if "api" in node["services"]) == api.nodes


def test_missing_folder(stack: Stack, estate: Estate, tmp_path: Path) -> None:
    folder = tmp_path / "services" / "api"
    message = (f"[prod/api] glued flake folder services/api does not exist "
               f"(expected {folder} with flake.nix, app.py and edgekit.json)")
    with pytest.raises(ConstructError, match=f"^{re.escape(message)}$"):
        GluedFlake(stack, "api", path="services/api", root=tmp_path, **_of(estate))
    assert stack.node.try_find_child("api") is None  # a failed construct leaves no trace


def test_missing_flake_nix(stack: Stack, estate: Estate, tmp_path: Path) -> None:
    folder = tmp_path / "services" / "api"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text("")
    message = (f"[prod/glue-api] glued flake services/api has no flake.nix "
               f"(expected {folder / 'flake.nix'})")
    with pytest.raises(ConstructError, match=f"^{re.escape(message)}$"):
        GluedFlake(stack, "glue-api", path="services/api", root=tmp_path, **_of(estate))


def test_service_placed_nowhere(stack: Stack, estate: Estate) -> None:
    placement = {node: tuple(s for s in names if s != "web")
                 for node, names in estate.env.placement.items()}
    unplaced = attrs.evolve(estate, env=attrs.evolve(estate.env, placement=placement))
    message = ("[prod/web] service 'web' is placed on no node; add it to the placement "
               "(node → services) of at least one node")
    with pytest.raises(ConstructError, match=f"^{re.escape(message)}$"):
        GluedFlake(stack, "web", path="services/web", root=ROOT, **_of(unplaced))


def test_port_clash_on_a_node(stack: Stack, estate: Estate) -> None:
    """Found at synth with every other problem (EK121), located at the flake's placement."""
    web = attrs.evolve(estate.services["web"], port=8080)
    clash = attrs.evolve(estate, services={**estate.services, "web": web})
    GluedFlake(stack, "api", path="services/api", root=ROOT, **_of(clash))
    with pytest.raises(SynthError) as raised:
        stack.node.root.synth_results()  # type: ignore[attr-defined]
    found = [(p.path, p.pointer, p.message.split(" (fix:")[0])
             for p in raised.value.problems if "EK121" in p.message]
    assert found == [
        ("prod/api", f"$.placement.{node}[1]",
         f"EK121 service 'web' listens on port 8080 on node '{node}', already used by "
         "service 'api'") for node in ("edge-1", "edge-2", "edge-tokyo")]


def test_unknown_and_worker_services(stack: Stack, estate: Estate, tmp_path: Path) -> None:
    for name in ("shop", "edge-worker"):
        folder = tmp_path / "services" / name
        folder.mkdir(parents=True)
        (folder / "flake.nix").write_text("{ outputs = { self }: { }; }\n")
    with pytest.raises(ConstructError, match=re.escape(
            "[prod/shop] service 'shop' is not among the services "
            "(known: api, edge-worker, web)")):
        GluedFlake(stack, "shop", path="services/shop", root=tmp_path, **_of(estate))
    with pytest.raises(ConstructError, match=re.escape(
            "[prod/worker] service 'edge-worker' is a worker (it runs on Cloudflare); "
            "it has no glued flake")):
        GluedFlake(stack, "worker", path="services/edge-worker", root=tmp_path, **_of(estate))


def test_bad_path_is_refused_by_the_cue_schema(stack: Stack, estate: Estate) -> None:
    with pytest.raises(PropsError, match=re.escape(
            '[prod/api] #GluedFlake: "svc/api" is not a service folder \'services/<name>\' '
            "(e.g. 'services/api') @ $.path")):
        GluedFlake(stack, "api", path="svc/api", root=ROOT, **_of(estate))
