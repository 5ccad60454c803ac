"""Exact provider versions every stack requires.

These must equal the pins in ``tools/versions.env`` (the binaries the tests build and the
schemas in ``edgekit/schema/data`` come from); a test keeps them equal. The clouds' pins
are their adapters' (`Cloud.pin`): `PINS` is the providers below plus every registered
cloud's, read when asked (importing this module loads no cloud).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from edgekit.core.synth import ProviderPin

OWN: dict[str, ProviderPin] = {
    pin.name: pin
    for pin in (
        ProviderPin(name="random", source="hashicorp/random", version="3.9.0"),
        # Only for stacks that are really applied on this machine (tests, local files).
        ProviderPin(name="local", source="hashicorp/local", version="2.9.0"),
        ProviderPin(name="cloudflare", source="cloudflare/cloudflare", version="5.24.0"),
    )
}
"""The providers that are not a cloud adapter's."""


class Pins(Mapping[str, ProviderPin]):
    """Provider name → pin: `OWN` and every registered cloud's (`edgekit.clouds`). A cloud's
    pin is its adapter's, which is loaded when that provider's pin is first asked for; the
    names are known without loading any (a cloud's pin is named after its provider)."""

    def __getitem__(self, name: str) -> ProviderPin:
        own = OWN.get(name)
        if own is not None:
            return own
        from edgekit.clouds import CLOUDS  # loaded on first use: `import edgekit` stays small

        owner = CLOUDS.by_provider(name)
        if owner is None:
            raise KeyError(name)
        return owner.pin

    def __iter__(self) -> Iterator[str]:
        from edgekit.clouds import CLOUDS

        return iter([*OWN, *(p for p in CLOUDS.providers() if p not in OWN)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        from edgekit.clouds import CLOUDS

        return name in OWN or name in CLOUDS.providers()


PINS = Pins()


def pin_for(name: str) -> ProviderPin:
    try:
        return PINS[name]
    except KeyError:
        pinned = ", ".join(sorted(PINS))
        raise KeyError(f"provider {name!r} is not pinned (pinned: {pinned})") from None


def mock_defaults(resource_type: str) -> dict[str, object]:
    """Defaults of a mocked `resource_type` in the generated `tofu test` file: the cloud's
    for every resource of its provider, then the resource type's own (`Kind.mock`)."""
    from edgekit.clouds import cloud_of_type

    owner = cloud_of_type(resource_type)
    if owner is None:
        return {}
    kind = owner.kinds.get(resource_type)
    return {**owner.mock_defaults, **(kind.mock if kind is not None else {})}
