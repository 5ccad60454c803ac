"""Enumerations of the public API are `Literal` types (issue 23): a typo is refused by the
type checker before anything runs, and an IDE offers the valid values.

`make lint` runs ``mypy --strict`` over this file. Each typo below carries the ``type:
ignore`` of the error mypy reports for it, and mypy fails on an ignore that is not needed
(``warn_unused_ignores``): this file type-checks only while every typo is refused. At run
time the same typos are refused by the properties' check, naming the construct.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edgekit import (
    App,
    CloudflareZone,
    ConstructError,
    LocalState,
    Needs,
    PrivateNetwork,
    R2LogSink,
    Service,
    Stack,
    Tunnel,
    VpsNode,
)


def write_with_typos(stack: Stack) -> None:
    """What a user might type; the comments are mypy's verdicts."""
    VpsNode(stack, "a", provider="hetzer", region="nbg1", size="small")  # type: ignore[arg-type]
    VpsNode(stack, "b", provider="hetzner", region="nbg1", size="small",
            roles=["egde"])  # type: ignore[list-item]
    PrivateNetwork(stack, "net", provider="digital-ocean", region="sgp1")  # type: ignore[arg-type]
    zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
                          environment="prod")
    Tunnel(stack, "tunnel", zone=zone, services={}, nodes=[],
           strategy="per-node")  # type: ignore[arg-type]
    Service(name="api", kind="vm")  # type: ignore[arg-type]
    Needs(postgres="rx")  # type: ignore[arg-type]
    R2LogSink(stack, "logs", account_id="0" * 32, bucket="logs",
              location_hint="europe")  # type: ignore[arg-type]


@pytest.mark.parametrize("line", range(5))
def test_the_same_typos_are_refused_at_run_time(line: int, tmp_path: Path) -> None:
    stack = Stack(App(outdir=tmp_path), "prod", state=LocalState())
    calls: list[Callable[[], object]] = [
        lambda: VpsNode(stack, "a", provider="hetzer",  # type: ignore[arg-type]
                        region="nbg1", size="small"),
        lambda: VpsNode(stack, "b", provider="hetzner", region="nbg1", size="small",
                        roles=["egde"]),  # type: ignore[list-item]
        lambda: PrivateNetwork(stack, "net", provider="digital-ocean",  # type: ignore[arg-type]
                               region="sgp1"),
        lambda: Tunnel(stack, "tunnel", zone=CloudflareZone(
            account_id="0" * 32, zone_id="1" * 32, zone="example.com", environment="prod"),
            services={}, nodes=[], strategy="per-node"),  # type: ignore[arg-type]
        lambda: R2LogSink(stack, "logs", account_id="0" * 32, bucket="logs",
                          location_hint="europe"),  # type: ignore[arg-type]
    ]
    with pytest.raises(ConstructError, match=r"expected one of"):
        calls[line]()
