"""Buckets a node cannot erase (ADR 0037): every log and backup bucket is locked, the locks
leave the nodes' own keys writable, the backup lock fits pgBackRest's retention, and every R2
token reaches one bucket only."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.walk import blocks

if TYPE_CHECKING:  # annotations only: a synth that recorded no layout never loads them
    from edgekit.constructs.facts import BucketFact

DAY = 86400
R2_ITEM_GROUPS = {"2efd5506f9c8494dacb1fa10a3e7d5b6": "Workers R2 Storage Bucket Item Write",
                  "6a018a9f2fc74eb6b293b0c548f38b39": "Workers R2 Storage Bucket Item Read"}
BUCKET_SCOPE = re.compile(r"^com\.cloudflare\.edge\.r2\.bucket\.[0-9a-f]{32}_[a-z]+_[a-z0-9-]+$")
_REF = re.compile(r"^\$\{cloudflare_r2_bucket\.([A-Za-z0-9_-]+)\.name\}$")
LOCKS_DOC = "https://developers.cloudflare.com/r2/buckets/bucket-locks/"


def _buckets(stack: StackView) -> dict[str, tuple[str, str]]:
    """Bucket name -> (address of its cloudflare_r2_bucket, that resource's name)."""
    found: dict[str, tuple[str, str]] = {}
    for _, address, body in stack.resources("cloudflare_r2_bucket"):
        name = body.get("name")
        if isinstance(name, str):
            found[name] = (address, address.split(".", 1)[1])
    return found


def _rules_on(stack: StackView, kind: str, bucket: str) -> list[tuple[str, dict[str, Any]]]:
    """(address, rule) of every rule of `kind` resources that name `bucket`, literally or
    through a reference to its cloudflare_r2_bucket."""
    resource = _buckets(stack).get(bucket, ("", ""))[1]
    out = []
    for _, address, body in stack.resources(kind):
        target = body.get("bucket_name")
        ref = _REF.match(target) if isinstance(target, str) else None
        if target == bucket or (ref is not None and ref.group(1) == resource):
            out += [(address, r) for r in blocks(body.get("rules"))]
    return out


def _lock_seconds(rule: Mapping[str, Any]) -> float | None:
    """How long the rule locks an object (inf for Indefinite/Date), None when disabled."""
    if rule.get("enabled") is not True:
        return None
    condition = rule.get("condition")
    condition = condition if isinstance(condition, Mapping) else {}
    if condition.get("type") in ("Indefinite", "Date"):
        return float("inf")
    age = condition.get("max_age_seconds")
    return float(age) if condition.get("type") == "Age" and isinstance(age, int | float) else None


def _prefix(rule: Mapping[str, Any], key: str = "prefix") -> str:
    value = rule.get(key)
    return value if isinstance(value, str) else ""


def locked_for(stack: StackView, bucket: str, prefix: str) -> float:
    """The longest lock on keys under `prefix` (0 when none)."""
    longest = 0.0
    for _, lock in _rules_on(stack, "cloudflare_r2_bucket_lock", bucket):
        seconds = _lock_seconds(lock)
        if seconds is not None and prefix.startswith(_prefix(lock)):
            longest = max(longest, seconds)
    return longest


def bucket_facts(ctx: Context) -> Iterator[tuple[StackView, BucketFact]]:
    """Each bucket a stack's constructs made for the nodes (R2LogSink, PgBackups), with the
    stack that holds it; the same bucket recorded twice is judged once."""
    seen: set[tuple[str, str]] = set()
    for layout in ctx.layouts:
        stack = _stack(ctx, layout.stack)
        for fact in layout.buckets:
            if stack is not None and (stack.name, fact.bucket) not in seen:
                seen.add((stack.name, fact.bucket))
                yield stack, fact


def _stack(ctx: Context, name: str) -> StackView | None:
    return next((s for s in ctx.stacks if s.name == name), None)


@rule("EK220", title="every log and backup bucket is locked", severity="error",
      source=f"{LOCKS_DOC} (locks refuse delete and overwrite; R2 tokens have no write-only "
      "permission: Bucket Item Write also deletes)",
      fix="use R2LogSink / PgBackups (they add the lock), or add a cloudflare_r2_bucket_lock "
      "whose rules cover the prefixes named, for at least the retention")
def unlocked_buckets(ctx: Context) -> Iterator[Hit]:
    for stack, fact in bucket_facts(ctx):
        buckets = _buckets(stack)
        what, bucket, seconds = fact.what, fact.bucket, fact.lock_seconds
        if bucket not in buckets:
            continue  # not created by this stack: nothing of it to check here
        address = buckets[bucket][0]
        for prefix in fact.prefixes:
            held = locked_for(stack, bucket, prefix)
            if held < seconds:
                have = "no lock" if held == 0 else f"a lock of {held / DAY:g} days"
                yield stack.hit(address, f"{what} {bucket!r}: keys under {prefix!r} have "
                                f"{have}, {seconds / DAY:g} days needed; a node's R2 "
                                "token can delete or overwrite them", "$.name")


@rule("EK221", title="a logs bucket's lock and lifecycle leave the nodes' own keys alone",
      severity="error",
      source=f"{LOCKS_DOC}; contracts: status/<env>/<node>.json, mesh/<env>/<node>.pub and "
      "pg-tls/<env>/<node>.crt are rewritten by the nodes (edgekit.obs.contract.NODE_KEYS)",
      fix="scope lock and lifecycle rules to the log prefixes (otel/, traces/, edge/, "
      "edge-logpush/), never the empty prefix")
def node_keys_locked(ctx: Context) -> Iterator[Hit]:
    for stack, fact in bucket_facts(ctx):
        if not fact.keep:
            continue
        bucket = fact.bucket
        checks = (("cloudflare_r2_bucket_lock", "locks", "prefix"),
                  ("cloudflare_r2_bucket_lifecycle", "expires", "conditions"))
        for kind, verb, field in checks:
            for address, rule_ in _rules_on(stack, kind, bucket):
                if rule_.get("enabled") is not True:
                    continue
                prefix = (_prefix(rule_) if field == "prefix" else
                          _prefix(rule_.get("conditions") or {}))
                # a rule over a whole node prefix, or over part of one (mesh/prod/)
                hurt = [k for k in fact.keep if k.startswith(prefix) or prefix.startswith(k)]
                if hurt:
                    yield stack.hit(address, f"rule {rule_.get('id')!r} (prefix {prefix!r}) "
                                    f"{verb} {', '.join(hurt)} of the logs bucket {bucket!r}: "
                                    "the nodes rewrite those keys", "$.rules")


@rule("EK222", title="the backup bucket's lock ends before pgBackRest expires a file",
      severity="error",
      source="edgekit/constructs/pg_lock.py (expire deletes a set (N-1) x full interval "
      "after its last file at the earliest); pgBackRest 2.57 src/command/expire/expire.c",
      fix="lower the backups' lock_days in {file} (BackupSettings(lock_days=...), or "
      "postgres.backups.lock_days in CUE), or keep more full backups (retention_full)")
def backup_lock_too_long(ctx: Context) -> Iterator[Hit]:
    for stack, fact in bucket_facts(ctx):
        longest = fact.longest_lock_seconds
        if longest is None:
            continue
        for address, lock in _rules_on(stack, "cloudflare_r2_bucket_lock", fact.bucket):
            seconds = _lock_seconds(lock)
            prefix = _prefix(lock)
            if seconds is None or not any(p.startswith(prefix) or prefix.startswith(p)
                                          for p in fact.prefixes):
                continue
            if seconds > longest:
                yield stack.hit(address, f"rule {lock.get('id')!r} locks backups for "
                                f"{seconds / DAY:g} days, but {fact.why_longest}: expire "
                                f"would fail; at most {longest / DAY:g}", "$.rules")


@rule("EK223", title="an R2 API token reaches one bucket only", severity="error",
      source="https://developers.cloudflare.com/r2/api/tokens/ (bucket-scoped permissions)",
      fix="scope the token's policy resources to one com.cloudflare.edge.r2.bucket.<account>_"
      "default_<bucket> key")
def token_scope(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        tokens = [*stack.resources("cloudflare_api_token"),
                  *stack.resources("cloudflare_account_token")]
        for _, address, body in tokens:
            for index, policy in enumerate(blocks(body.get("policies"))):
                groups = {g.get("id") for g in blocks(policy.get("permission_groups"))}
                if not groups & R2_ITEM_GROUPS.keys():
                    continue
                raw = policy.get("resources")
                try:
                    scopes = json.loads(raw) if isinstance(raw, str) else raw
                except ValueError:
                    scopes = None
                keys = list(scopes) if isinstance(scopes, Mapping) else []
                if len(keys) != 1 or not BUCKET_SCOPE.match(str(keys[0])):
                    yield stack.hit(address, f"policy {index} grants R2 object access to "
                                    f"{keys or raw!r}: expected exactly one bucket",
                                    f"$.policies[{index}].resources")
