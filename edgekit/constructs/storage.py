"""Volume (block storage attached to a node) and Snapshot (a point-in-time copy of a node).

    Volume    hetzner hcloud_volume + hcloud_volume_attachment; linode linode_volume
              (linode_id); vultr vultr_block_storage (attached_to_instance)
    Snapshot  hetzner hcloud_snapshot; vultr vultr_snapshot; linode has no snapshot
              resource: a Snapshot turns on Linode's managed backups of the node instead
              (daily, weekly and bi-weekly copies kept by Linode, restorable to a new
              instance) rather than one copy made at apply time. A disk image
              (linode_image) would be a single copy of one disk, taken only when applied.
"""

from __future__ import annotations

from edgekit.constructs.base import label, located, validated
from edgekit.constructs.catalog import CatalogError, resolve_region
from edgekit.constructs.node import VpsNode
from edgekit.constructs.props import SnapshotProps, VolumeProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.errors import ConstructError


class Volume(Construct):
    """A block volume attached to a node, in the node's region.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import Volume, VpsNode
    >>> node = VpsNode(stack, "db", provider="vultr", region="tokyo", size="medium")
    >>> Volume(stack, "data", node=node, size_gb=100).node.path
    'prod/data'
    """
    def __init__(self, scope: Construct, id: str, *, node: VpsNode, size_gb: int,
                 region: str | None = None) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "Volume", VolumeProps,
                               {"name": id, "size_gb": size_gb, "region": region or node.region})
        try:
            self.region = resolve_region(node.provider, self.props.region)
        except CatalogError as err:
            raise located(self, err) from err
        if self.region != node.region:
            raise ConstructError(
                f"[{self.node.path}] volume in {self.region}, but its node {node.node.path} "
                f"is in {node.region}; a volume can only attach to a node in its own region")
        name = label(self)
        self.device_path: str
        """Where the node sees the volume: a stable path, known before the node boots."""
        if node.provider == "hetzner":
            self.resource = Resource(self, "Resource", type="hcloud_volume", config={
                "name": name, "size": size_gb, "location": self.region, "format": "ext4",
            })
            Resource(self, "attachment", type="hcloud_volume_attachment", config={
                "volume_id": self.resource.attr("id"), "server_id": node.id_ref,
                "automount": False,
            })
            # hcloud: /dev/disk/by-id/scsi-0HC_Volume_<volume id> (the volume is created
            # before the server, so the server's boot document may name it: no cycle).
            self.device_path = f"/dev/disk/by-id/scsi-0HC_Volume_{self.resource.attr('id')}"
        elif node.provider == "linode":
            self.resource = Resource(self, "Resource", type="linode_volume", config={
                "label": name[:32], "region": self.region, "size": size_gb,
                "linode_id": node.id_ref,
            })
            # Linode: /dev/disk/by-id/scsi-0Linode_Volume_<label>.
            self.device_path = f"/dev/disk/by-id/scsi-0Linode_Volume_{name[:32]}"
        else:
            self.resource = Resource(self, "Resource", type="vultr_block_storage", config={
                "label": name, "region": self.region, "size_gb": size_gb,
                "attached_to_instance": node.id_ref, "live": True,
            })
            # Vultr: the first block storage attached is the second virtio disk. (Its id
            # cannot be named: the volume attaches to the instance, so it comes after it.)
            self.device_path = "/dev/vdb"


class Snapshot(Construct):
    """A snapshot of a node's disk (Linode has none: it turns on the node's managed backups).

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import Snapshot, VpsNode
    >>> node = VpsNode(stack, "db", provider="hetzner", region="nbg1", size="small")
    >>> Snapshot(stack, "db-snapshot", node=node, description="before upgrade").node.id
    'db-snapshot'
    """
    def __init__(self, scope: Construct, id: str, *, node: VpsNode,
                 description: str = "") -> None:
        super().__init__(scope, id)
        self.props = validated(self, "Snapshot", SnapshotProps,
                               {"name": id, "description": description})
        text = description or f"edgekit snapshot of {node.node.path}"
        self.resource: Resource | None
        if node.provider == "hetzner":
            self.resource = Resource(self, "Resource", type="hcloud_snapshot", config={
                "server_id": node.id_ref, "description": text,
            })
        elif node.provider == "vultr":
            self.resource = Resource(self, "Resource", type="vultr_snapshot", config={
                "instance_id": node.id_ref, "description": text,
            })
        else:  # linode: managed backups instead (see the module doc)
            node.resource.config["backups_enabled"] = True
            self.resource = None
