"""Volume (block storage attached to a node) and Snapshot (a point-in-time copy of a node).

The resources are the node's cloud adapter's (`Cloud.volume`, `Cloud.snapshot`). A volume
comes with the stable device path the node sees it at, known before the node boots (or,
where the cloud names the volume only once attached, a pattern the node resolves). A
cloud without a snapshot resource keeps managed backups of the node instead (its adapter
says which, and turns them on).
"""

from __future__ import annotations

from edgekit.clouds import CatalogError
from edgekit.constructs.base import label, located, validated
from edgekit.constructs.node import VpsNode
from edgekit.constructs.props import SnapshotProps, VolumeProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.errors import ConstructError


class Volume(Construct):
    """A block volume attached to a node, in the node's region.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PROVIDERS, Volume, VpsNode
    >>> node = VpsNode(stack, "db", provider=PROVIDERS[0], region="singapore", size="medium")
    >>> volume = Volume(stack, "data", node=node, size_gb=100)
    >>> volume.node.path, volume.device_path.startswith("/dev/")
    ('prod/data', True)
    """
    def __init__(self, scope: Construct, id: str, *, node: VpsNode, size_gb: int,
                 region: str | None = None) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "Volume", VolumeProps,
                               {"name": id, "size_gb": size_gb, "region": region or node.region})
        try:
            self.region = node.cloud.catalog.region(self.props.region)
        except CatalogError as err:
            raise located(self, err) from err
        if self.region != node.region:
            raise ConstructError(
                f"[{self.node.path}] volume in {self.region}, but its node {node.node.path} "
                f"is in {node.region}; a volume can only attach to a node in its own region")
        self.device_path: str
        """Where the node sees the volume: a stable path known before the node boots, or a
        pattern the node resolves at boot (`edgekit.clouds.facts.Boot.second_disk`)."""
        self.resource, self.device_path = node.cloud.volume(
            self, label=label(self), region=self.region, size_gb=size_gb,
            server_id=node.id_ref)


class Snapshot(Construct):
    """A snapshot of a node's disk (where the cloud has none, its managed backups).

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PROVIDERS, Snapshot, VpsNode
    >>> node = VpsNode(stack, "db", provider=PROVIDERS[0], region="singapore", size="small")
    >>> Snapshot(stack, "db-snapshot", node=node, description="before upgrade").node.id
    'db-snapshot'
    """
    def __init__(self, scope: Construct, id: str, *, node: VpsNode,
                 description: str = "") -> None:
        super().__init__(scope, id)
        self.props = validated(self, "Snapshot", SnapshotProps,
                               {"name": id, "description": description})
        text = description or f"edgekit snapshot of {node.node.path}"
        self.resource: Resource | None = node.cloud.snapshot(
            self, label=label(self), server=node.resource, description=text)
