"""Cloud adapters: one module per cloud behind one interface (`Cloud`, ADR 0018, ADR 0030).

`cloud(name)` returns the adapter the constructs call; `CLOUDS` maps every supported
provider name to its adapter; `kind_of(resource_type)` is what the check rules know about a
resource type of any cloud. Adding a cloud: a module here with its `Catalog`, its `Kind`
table and a `Cloud` subclass (``CLOUD = MyCloud()``), and its name in `CloudName` and
`MODULES` below; outside this package only its provider build (``tools/versions.env``), its
committed provider schema (``edgekit/schema/data``, `make schemas`) and its name in CUE's
``#Provider``.

An adapter's module is imported when its cloud is first asked for (ADR 0042): a stack on
Hetzner never loads the other clouds' catalogues and tables. `MODULES` knows each cloud's
OpenTofu provider without importing it (a test keeps it equal to the adapters').
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

if TYPE_CHECKING:
    from edgekit.clouds.base import Catalog, CatalogError, Cloud
    from edgekit.clouds.kinds import Kind

CloudName = Literal["hetzner", "linode", "vultr", "digitalocean"]
"""The name of a supported cloud: a typo is refused by the type checker (a test keeps it
equal to `CLOUDS` and to CUE's ``#Provider``)."""

MODULES: dict[str, tuple[str, str]] = {
    "hetzner": ("hcloud", "edgekit.clouds.hetzner"),
    "linode": ("linode", "edgekit.clouds.linode"),
    "vultr": ("vultr", "edgekit.clouds.vultr"),
    "digitalocean": ("digitalocean", "edgekit.clouds.digitalocean"),
}
"""Cloud name → (its OpenTofu provider, the module whose ``CLOUD`` is its adapter)."""


class Clouds(Mapping[str, "Cloud"]):
    """Cloud name → adapter, each adapter imported on first use; iterating, ``in`` and
    `by_provider` of another cloud's resource types load nothing."""

    def __init__(self, modules: Mapping[str, tuple[str, str]]) -> None:
        self._modules = dict(modules)
        self._loaded: dict[str, Cloud] = {}
        self._by_provider = {provider: name for name, (provider, _) in modules.items()}

    def __getitem__(self, name: str) -> Cloud:
        found = self._loaded.get(name)
        if found is None:
            provider, module = self._modules[name]
            found = importlib.import_module(module).CLOUD
            if (found.name, found.tofu_provider, found.pin.name) != (name, provider, provider):
                raise RuntimeError(f"{module}.CLOUD is {found.name!r} of provider "
                                   f"{found.tofu_provider!r} pinned as {found.pin.name!r}; "
                                   f"edgekit.clouds.MODULES says {name!r} of {provider!r}")
            self._loaded[name] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def providers(self) -> dict[str, str]:
        """OpenTofu provider → cloud name, of every registered cloud (nothing loaded)."""
        return dict(self._by_provider)

    def by_provider(self, provider: str) -> Cloud | None:
        """The cloud of OpenTofu provider `provider` (``hcloud``), or None."""
        name = self._by_provider.get(provider)
        return self[name] if name is not None else None

    def add(self, adapter: Cloud) -> None:
        if adapter.name in self._modules:
            raise ValueError(f"cloud {adapter.name!r} is registered already")
        if adapter.pin.name != adapter.tofu_provider:  # `PINS` finds a pin by its provider
            raise ValueError(f"cloud {adapter.name!r} pins {adapter.pin.name!r}, not its "
                             f"provider {adapter.tofu_provider!r}")
        if adapter.tofu_provider in self._by_provider:
            raise ValueError(f"provider {adapter.tofu_provider!r} is cloud "
                             f"{self._by_provider[adapter.tofu_provider]!r}'s already")
        self._modules[adapter.name] = (adapter.tofu_provider, type(adapter).__module__)
        self._loaded[adapter.name] = adapter
        self._by_provider[adapter.tofu_provider] = adapter.name

    def remove(self, name: str) -> None:
        provider, _ = self._modules.pop(name)
        self._loaded.pop(name, None)
        del self._by_provider[provider]


class Catalogs(Mapping[str, "Catalog"]):
    """Cloud name → its catalogue (the adapter's, loaded as `CLOUDS` loads it)."""

    def __getitem__(self, name: str) -> Catalog:
        return CLOUDS[name].catalog

    def __iter__(self) -> Iterator[str]:
        return iter(CLOUDS)

    def __len__(self) -> int:
        return len(CLOUDS)

    def __contains__(self, name: object) -> bool:
        return name in CLOUDS


CLOUDS = Clouds(MODULES)
PROVIDERS: tuple[CloudName, ...] = cast(tuple[CloudName, ...], get_args(CloudName))
CATALOGS = Catalogs()


def cloud(name: str) -> Cloud:
    """The adapter of `name`, or a `CatalogError` listing the supported clouds."""
    if name not in CLOUDS:
        from edgekit.clouds.base import CatalogError

        raise CatalogError(f"unknown provider {name!r}; expected one of: {', '.join(CLOUDS)}")
    return CLOUDS[name]


def cloud_of_type(resource_type: str) -> Cloud | None:
    """The cloud whose OpenTofu provider owns `resource_type` (``hcloud_server`` → Hetzner),
    or None (Cloudflare, random, ...: not a cloud adapter's; nothing is loaded for them)."""
    return CLOUDS.by_provider(resource_type.split("_", 1)[0])


def kind_of(resource_type: str) -> Kind | None:
    """What the rules know about `resource_type`, or None when no cloud describes it."""
    owner = cloud_of_type(resource_type)
    return owner.kinds.get(resource_type) if owner is not None else None


@contextmanager
def registered(adapter: Cloud) -> Iterator[Cloud]:
    """`adapter` is a supported cloud inside the block (tests register a fake cloud the way
    a fifth cloud's module would be registered)."""
    CLOUDS.add(adapter)
    try:
        yield adapter
    finally:
        CLOUDS.remove(adapter.name)


_LAZY = {"Catalog": "edgekit.clouds.base", "CatalogError": "edgekit.clouds.base",
         "Cloud": "edgekit.clouds.base", "Kind": "edgekit.clouds.kinds"}


def __getattr__(name: str) -> Any:
    """The interface's classes, imported when first named (a stack of no cloud loads none)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CATALOGS",
    "CLOUDS",
    "MODULES",
    "PROVIDERS",
    "Catalog",
    "CatalogError",
    "Cloud",
    "CloudName",
    "Kind",
    "cloud",
    "cloud_of_type",
    "kind_of",
    "registered",
]
