"""Helpers of the clouds' managed Postgres (`Cloud.managed_postgres`, ADR 0012)."""

from __future__ import annotations

from edgekit.clouds.base import ManagedDb, ManagedRequest
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref


def random_passwords(scope: Construct, request: ManagedRequest) -> dict[str, Ref]:
    return {service: Resource(scope, f"password-{service}", type="random_password",
                              config={"length": 32, "special": False}).attr("result")
            for service in request.roles}


def admin_url(user: str, password: str, host: str, port: str, database: str) -> str:
    """A libpq URL from OpenTofu expressions, credentials URL-encoded, TLS required."""
    return (f"postgresql://${{urlencode({user})}}:${{urlencode({password})}}@${{{host}}}:"
            f"${{{port}}}/${{{database}}}?sslmode=require")


__all__ = ["ManagedDb", "ManagedRequest", "admin_url", "random_passwords"]
