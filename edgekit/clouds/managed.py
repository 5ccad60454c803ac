"""What a cloud's managed Postgres takes and gives (`ManagedPg`, ADR 0012)."""

from __future__ import annotations

import attrs

from edgekit.clouds.base import NetworkLike
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref


@attrs.frozen(kw_only=True)
class ManagedRequest:
    label: str
    region: str
    plan: str
    version: int
    roles: dict[str, tuple[str, str]]
    """service -> (role, database), for the services that need Postgres."""
    client_ips: tuple[str, ...]
    """Public IPv4 expressions (``${...}``) of the clients outside the VPC."""
    network: NetworkLike | None


@attrs.frozen(kw_only=True)
class ManagedDb:
    resource: Resource
    host: Ref
    port: Ref
    passwords: dict[str, Ref]
    """service -> its role's password."""
    admin_url: Ref | str
    allow_list: list[str]


def random_passwords(scope: Construct, request: ManagedRequest) -> dict[str, Ref]:
    return {service: Resource(scope, f"password-{service}", type="random_password",
                              config={"length": 32, "special": False}).attr("result")
            for service in request.roles}


def admin_url(user: str, password: str, host: str, port: str, database: str) -> str:
    """A libpq URL from OpenTofu expressions, credentials URL-encoded, TLS required."""
    return (f"postgresql://${{urlencode({user})}}:${{urlencode({password})}}@${{{host}}}:"
            f"${{{port}}}/${{{database}}}?sslmode=require")
