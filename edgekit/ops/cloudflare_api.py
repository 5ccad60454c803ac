"""Is the Cloudflare API token good for these stacks? Asked before any apply (ADR 0032).

1. Cloudflare's verify endpoint: ``GET /user/tokens/verify`` for a user token, else
   ``GET /accounts/{account_id}/tokens/verify`` for an account-owned one; the token must
   be ``active``.
2. The token's own policies: ``GET /user/tokens/{id}`` or
   ``GET /accounts/{account_id}/tokens/{id}`` (a token may read itself when it holds the
   matching "API Tokens Read/Write" group, which edgekit's stacks need anyway). Every
   `Need` of the stacks (`edgekit.check.permissions`) must be granted by an ``allow``
   policy on resources covering the account, the zone or the user it is scoped to, and
   denied by none.

`EDGEKIT_CLOUDFLARE_API` points at another API base (a stand-in in tests). The token is
only ever sent in the Authorization header and never printed.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import orjson

from edgekit.check.permissions import Need
from edgekit.ops.tofu import OpsError

API = "https://api.cloudflare.com/client/v4"
API_ENV = "EDGEKIT_CLOUDFLARE_API"
TIMEOUT = 20.0


class TokenError(OpsError):
    pass


@attrs.frozen
class Token:
    id: str
    kind: str
    """``user`` or ``account``: which verify endpoint accepted it."""
    status: str
    policies: tuple[Mapping[str, Any], ...] | None
    """The token's policies, or None when it may not read itself."""


def _get(base: str, path: str, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{base.rstrip('/')}{path}", headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, orjson.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        try:
            body = orjson.loads(err.read() or b"{}")
        except orjson.JSONDecodeError:
            body = {}
        return err.code, body if isinstance(body, dict) else {}
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TokenError(f"cannot reach the Cloudflare API at {base}: {reason}") from err
    except orjson.JSONDecodeError as err:
        raise TokenError(f"the Cloudflare API at {base} answered {path} with no JSON") from err


def _errors(body: Mapping[str, Any]) -> str:
    items = body.get("errors") or []
    return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in items
                     if isinstance(e, Mapping)) or "no reason given"


def verify(token: str, account_id: str, base: str | None = None) -> Token:
    base = base or os.environ.get(API_ENV) or API
    attempts: list[str] = []
    for kind, prefix in (("user", "/user/tokens"),
                         ("account", f"/accounts/{account_id}/tokens")):
        status, body = _get(base, f"{prefix}/verify", token)
        result = body.get("result") if isinstance(body.get("result"), Mapping) else None
        if status == 200 and body.get("success") and result is not None:
            state = str(result.get("status", ""))
            if state != "active":
                raise TokenError(f"the Cloudflare API token is {state or 'not active'} "
                                 f"({kind} token {result.get('id')}); create a new one")
            detail_status, detail = _get(base, f"{prefix}/{result.get('id')}", token)
            policies = None
            if detail_status == 200 and isinstance(detail.get("result"), Mapping):
                policies = tuple(p for p in detail["result"].get("policies") or []
                                 if isinstance(p, Mapping))
            return Token(str(result.get("id")), kind, state, policies)
        attempts.append(f"{prefix}/verify: HTTP {status} ({_errors(body)})")
    raise TokenError("Cloudflare refused the API token (TF_VAR_cloudflare_api_token): "
                     + "; ".join(attempts))


def _resource_keys(resources: Any) -> set[str]:
    """Every key of a policy's (possibly nested) resources object."""
    if isinstance(resources, str):
        try:
            resources = orjson.loads(resources)
        except orjson.JSONDecodeError:
            return set()
    keys: set[str] = set()
    if isinstance(resources, Mapping):
        for key, value in resources.items():
            keys.add(str(key))
            keys |= _resource_keys(value)
    return keys


def _covers(keys: set[str], scope: str, account_id: str, zone_ids: Iterable[str]) -> bool:
    if scope == "account":
        return bool({f"com.cloudflare.api.account.{account_id}",
                     "com.cloudflare.api.account.*"} & keys)
    if scope == "zone":
        wanted = {f"com.cloudflare.api.account.zone.{z}" for z in zone_ids}
        return "com.cloudflare.api.account.zone.*" in keys or (wanted <= keys and bool(wanted))
    return any(k.startswith("com.cloudflare.api.user.") for k in keys)


def _names(policy: Mapping[str, Any]) -> set[str]:
    return {str(g.get("name")) for g in policy.get("permission_groups") or []
            if isinstance(g, Mapping)}


def missing(needs: Sequence[Need], policies: Sequence[Mapping[str, Any]], account_id: str,
            zone_ids: Iterable[str]) -> list[Need]:
    """The needs no allow policy grants on the right resources (or a deny policy takes)."""
    zones = list(zone_ids)
    lacking = []
    for need in needs:
        granted = denied = False
        for policy in policies:
            if not _names(policy) & set(need.groups):
                continue
            if not _covers(_resource_keys(policy.get("resources")), need.scope,
                           account_id, zones):
                continue
            if policy.get("effect") == "deny":
                denied = True
            else:
                granted = True
        if denied or not granted:
            lacking.append(need)
    return lacking


def check_token(token: str | None, needs: Sequence[Need], account_id: str,
                zone_ids: Iterable[str], base: str | None = None) -> str:
    """Raise TokenError unless the token is active and holds every need; else say what
    was checked (one line, no secret)."""
    if not needs:
        return "no Cloudflare resources: token not needed"
    if not token:
        raise TokenError("TF_VAR_cloudflare_api_token is not set; `edgekit check "
                         "--permissions` lists what the token must be allowed")
    found = verify(token, account_id, base)
    if found.policies is None:
        raise TokenError(
            f"the {found.kind} token {found.id} is active but may not read its own "
            "permissions (it lacks \"API Tokens Read\"/\"Account API Tokens Read\"); these "
            "stacks need: " + "; ".join(f"{n.scope} {n.dashboard}" for n in needs))
    lacking = missing(needs, found.policies, account_id, zone_ids)
    if lacking:
        raise TokenError(
            f"the {found.kind} token {found.id} is active but lacks: "
            + "; ".join(f"{n.scope} {n.dashboard}" for n in lacking)
            + " (edit it in the dashboard; `edgekit check --permissions` lists why each is "
            "needed). Nothing was applied")
    return f"{found.kind} token {found.id} active with the {len(needs)} permission(s) needed"
