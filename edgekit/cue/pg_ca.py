"""The Postgres primary's certificate authority into CUE: ``cue/outputs/<stack>.pg-tls.cue``
(ADR 0025), the way the WireGuard keys come (ADR 0010, `edgekit.cue.mesh_keys`).

The primary makes its own authority at first boot (``edgekit-pg-tls``) and never lets its key
out; the certificate is public, and the unit ``edgekit-pg-tls-publish`` PUTs it to
``pg-tls/<stack>/<node>.crt`` in the environment's logs bucket with the node's log-writer
keys (``nix/publish.nix``, the upload the mesh keys take). ``edgekit pg import-ca --stack S``
(and ``edgekit up``, before its Hyperdrive step) reads it (`read_published`), checks it is
one PEM certificate OpenSSL reads as a certificate authority (`parse_authority`), decides
with `plan_ca`, and writes the output ``pg_tls_ca`` into the outputs package (`write_ca`,
checked with ``cue vet`` like ``edgekit outputs import``): ``envs.<S>.observed.pg_tls_ca``,
which the Hyperdrive construct pins (``cloudflare_mtls_certificate``, ``verify-full``).

Trust on first use: the first authority is taken; a published one that differs from the one
in CUE is refused unless the operator says ``--rotate`` (every node of an environment holds
the same log-writer token, so any node could overwrite the primary's object: a different
authority must never reach Hyperdrive silently).
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from edgekit.constructs.pg_tls import CA_OUTPUT
from edgekit.core.errors import EdgekitError
from edgekit.cue.outputs import write_vetted

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "pg-tls"
SUFFIX = ".crt"
MAX_OBJECT_BYTES = 16 * 1024
"""An ECDSA P-256 authority's PEM is about 600 bytes; anything this big is not one."""
PEM = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?"
                 r"-----END CERTIFICATE-----\r?\n?")


class PgCaError(EdgekitError):
    """The published authority could not be imported; nothing was written."""


def object_key(stack: str, node: str) -> str:
    """Where the primary `node` of `stack` publishes its authority's certificate."""
    return f"{PREFIX}/{stack}/{node}{SUFFIX}"


def file_name(stack: str) -> str:
    return f"{stack}.pg-tls.cue"


@attrs.frozen
class Authority:
    pem: str
    """The certificate exactly as the node wrote it (one PEM block, ending in a newline)."""
    fingerprint: str
    """sha256 of the DER certificate, hex: what messages name it by."""
    subject: str
    not_after: str

    @property
    def short(self) -> str:
        return f"sha256 {self.fingerprint[:16]}…"


def parse_authority(body: bytes, where: str, *, now: float | None = None) -> Authority:
    """`body` as one PEM certificate that OpenSSL parses, that is a certificate authority
    and that has not expired; raises PgCaError naming `where` and what is wrong."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise PgCaError(f"{where}: not a PEM certificate (not ASCII text)") from None
    blocks = PEM.findall(text)
    rest = PEM.sub("", text).strip()
    if len(blocks) != 1 or rest:
        what = (f"{len(blocks)} certificates" if len(blocks) > 1 else
                f"{rest[:60]!r}" if rest else "an empty object")
        raise PgCaError(f"{where}: expected exactly one PEM certificate (-----BEGIN "
                        f"CERTIFICATE----- … -----END CERTIFICATE-----), found {what}")
    pem = blocks[0].replace("\r\n", "\n").rstrip("\n") + "\n"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as err:
        raise PgCaError(f"{where}: OpenSSL cannot read the certificate ({err})") from None
    # cert_store_stats counts what OpenSSL's X509_check_ca calls an authority
    if context.cert_store_stats().get("x509_ca") != 1:
        raise PgCaError(f"{where}: the certificate is not a certificate authority "
                        "(basicConstraints CA:TRUE); Hyperdrive pins the primary's authority, "
                        "not its server certificate")
    (info,) = context.get_ca_certs()
    not_after = str(info.get("notAfter", ""))
    if ssl.cert_time_to_seconds(not_after) <= (time.time() if now is None else now):
        raise PgCaError(f"{where}: the authority expired on {not_after}; make a new one on "
                        "the primary (ADR 0025, Rotation)")
    subject = ", ".join(f"{pair[0]}={pair[1]}" for rdn in info.get("subject", ())
                        for pair in rdn)
    der = ssl.PEM_cert_to_DER_cert(pem)
    return Authority(pem, hashlib.sha256(der).hexdigest(), subject, not_after)


def read_published(client: S3Client, bucket: str, stack: str, node: str, *,
                   now: float | None = None) -> Authority | None:
    """The authority `node` published, checked (`parse_authority`); None when there is no
    object yet. Other S3 failures raise botocore's errors for the caller to word."""
    from botocore.exceptions import ClientError

    key = object_key(stack, node)
    where = f"s3://{bucket}/{key}"
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_OBJECT_BYTES + 1)
    except ClientError as err:
        if str(err.response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404"):
            return None
        raise
    if len(body) > MAX_OBJECT_BYTES:
        raise PgCaError(f"{where}: more than {MAX_OBJECT_BYTES} bytes; an authority's "
                        "certificate is under one kilobyte")
    return parse_authority(body, where, now=now)


Change = Literal["new", "same", "rotated"]


def plan_ca(stack: str, current: str | None, published: Authority, *,
            rotate: bool = False) -> Change:
    """Trust on first use (module doc). Raises PgCaError when the published authority differs
    from the one in CUE without `rotate`, or `rotate` has nothing to rotate."""
    if current is None:
        if rotate:
            raise PgCaError(f"--rotate: stack {stack!r} has no pg_tls_ca in CUE yet, nothing "
                            "to rotate; run it without --rotate to take the first one")
        return "new"
    if current.strip() == published.pem.strip():
        if rotate:
            raise PgCaError(f"--rotate: the published authority ({published.short}) is the "
                            f"one in CUE already; nothing was written")
        return "same"
    if not rotate:
        try:
            known = parse_authority(current.encode(), f"pg_tls_ca of {stack}", now=0.0).short
        except PgCaError:
            known = "not a readable certificate"
        raise PgCaError(
            f"stack {stack!r}: the published Postgres authority ({published.short}, "
            f"{published.subject}) differs from pg_tls_ca in CUE ({known}); nothing was "
            "written. If the primary's authority was replaced on purpose (ADR 0025, Rotation), "
            "accept it with --rotate; otherwise something other than the primary wrote that "
            "object")
    return "rotated"


@attrs.frozen
class Imported:
    authority: Authority
    change: Change
    written: bool
    """Whether ``cue/outputs/<stack>.pg-tls.cue`` changed (regenerate then)."""


def import_published(root: Path, client: S3Client, bucket: str, stack: str, node: str,
                     current: str | None, *, rotate: bool = False) -> Imported | None:
    """What ``edgekit pg import-ca`` and ``edgekit up`` do: read `node`'s published
    authority, decide (`plan_ca`, against `current`, the ``pg_tls_ca`` in CUE), write it.
    None when nothing is published yet; PgCaError when it is refused (nothing written)."""
    published = read_published(client, bucket, stack, node)
    if published is None:
        return None
    change = plan_ca(stack, current, published, rotate=rotate)
    written = change != "same" and write_ca(root, stack, published.pem)
    return Imported(published, change, written)


def render_cue(stack: str, pem: str) -> str:
    entry = {"sensitive": False, "type": "string", "value": pem}
    return (f"// Generated by `edgekit pg import-ca --stack {stack}`; do not edit.\n"
            "// The Postgres primary's certificate authority (public; ADR 0025), which\n"
            "// Hyperdrive pins. Never a private key.\n"
            f"package outputs\n\nobserved: {json.dumps(stack)}: "
            f"{CA_OUTPUT}: {json.dumps(entry, indent=chr(9))}\n")


def write_ca(root: Path, stack: str, pem: str) -> bool:
    """Write ``cue/outputs/<stack>.pg-tls.cue`` once ``cue vet`` accepts it; True if changed."""
    return write_vetted(root, file_name(stack), render_cue(stack, pem))
