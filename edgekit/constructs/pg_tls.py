"""TLS on the Postgres primary (ADR 0025): the node makes its own certificate authority and
server certificate, Postgres serves only TLS logins, Hyperdrive verifies the server against
that authority.

Pure data: the settings ``services.postgresql.settings`` takes, and the oneshot unit that
makes the certificates (``edgekit-pg-tls``, ordered before ``postgresql.service``, run again
daily by its timer). The private keys never leave the node: the authority's key is root's
(0600), the server key the ``postgres`` user's (0600, as Postgres requires). The
authority's certificate is public: the unit prints it to its log as ``edgekit-pg-tls-ca
<base64 PEM>``, and its companion `PUBLISH_UNIT` PUTs it to ``pg-tls/<env>/<node>.crt`` in the
logs bucket (the signed upload of ``nix/publish.nix``, the one the WireGuard keys take, ADR
0010). ``edgekit pg import-ca`` (``edgekit.cue.pg_ca``) brings it into CUE as the output
``pg_tls_ca``, trust on first use; the Hyperdrive configuration pins it
(``cloudflare_mtls_certificate`` with ``ca = true`` and ``sslmode = "verify-full"``).

Rotation: the server certificate (`SERVER_DAYS` days) is renewed by the unit when fewer than
`RENEW_DAYS` days are left, and Postgres reloads it (``SIGHUP`` re-reads the TLS files). The
authority (`CA_DAYS` days) is replaced only by deleting ``ca.key`` on the node and importing
the new ``pg_tls_ca`` (``edgekit pg import-ca --rotate``); Hyperdrive then pins the new one on
the next apply.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

TLS_DIR = "/var/lib/edgekit/pg-tls"
"""Where the node keeps its authority and server certificate (root disk, not the volume)."""
TLS_UNIT = "edgekit-pg-tls"
PUBLISH_UNIT = f"{TLS_UNIT}-publish"
"""Publishes the authority's certificate to the logs bucket after every run of `TLS_UNIT`."""
CA_OUTPUT = "pg_tls_ca"
"""The CUE output holding the authority's PEM certificate, once imported."""
CA_DAYS = 3650
SERVER_DAYS = 90
RENEW_DAYS = 30
LOG_MARK = "edgekit-pg-tls-ca"


def postgres_ssl_settings(directory: str = TLS_DIR) -> dict[str, Any]:
    """``services.postgresql.settings`` for TLS: on, TLS 1.2 at least, the node's files."""
    return {
        "ssl": True,
        "ssl_cert_file": f"{directory}/server.crt",
        "ssl_key_file": f"{directory}/server.key",
        "ssl_min_protocol_version": "TLSv1.2",
    }


def _subject_alt_names(hostnames: Sequence[str], addresses: Sequence[str]) -> str:
    names = [f"DNS:{h}" for h in hostnames]
    for address in addresses:
        names.append(f"IP:{ipaddress.ip_address(address)}")
    if not names:
        raise ValueError("the Postgres server certificate needs a hostname or an address")
    return ",".join(names)


def certificate_script(*, hostnames: Sequence[str], addresses: Sequence[str],
                       directory: str = TLS_DIR, owner: str = "postgres") -> str:
    """The shell script of `TLS_UNIT` (openssl, coreutils): the authority once, the server
    certificate when missing, expiring within `RENEW_DAYS` days, or naming other hosts than
    `hostnames`/`addresses` (the Hyperdrive hostname and the listen addresses)."""
    san = _subject_alt_names(hostnames, addresses)
    subject = f"/CN={hostnames[0] if hostnames else addresses[0]}"
    return f"""\
set -eu
dir={directory}
install -d -m 0755 -o root -g root "$dir"
umask 077
if [ ! -s "$dir/ca.key" ] || [ ! -s "$dir/ca.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days {CA_DAYS} \\
    -subj '/CN=edgekit postgres CA' -addext 'basicConstraints=critical,CA:TRUE' \\
    -addext 'keyUsage=critical,keyCertSign,cRLSign' \\
    -keyout "$dir/ca.key.tmp" -out "$dir/ca.crt.tmp" 2>/dev/null
  chmod 0644 "$dir/ca.crt.tmp"
  mv "$dir/ca.key.tmp" "$dir/ca.key"
  mv "$dir/ca.crt.tmp" "$dir/ca.crt"
  rm -f "$dir/server.crt"
fi
renew=no
if [ ! -s "$dir/server.crt" ] || [ ! -s "$dir/server.key" ]; then
  renew=yes
elif ! openssl x509 -checkend {RENEW_DAYS * 86400} -noout -in "$dir/server.crt" >/dev/null; then
  renew=yes
elif [ "$(cat "$dir/server.san" 2>/dev/null)" != '{san}' ]; then
  renew=yes
fi
if [ "$renew" = yes ]; then
  printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth\\n' '{san}' > "$dir/server.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '{subject}' \\
    -keyout "$dir/server.key.tmp" -out "$dir/server.csr" 2>/dev/null
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \\
    -CAcreateserial -days {SERVER_DAYS} -extfile "$dir/server.ext" \\
    -out "$dir/server.crt.tmp" 2>/dev/null
  chown {owner}:{owner} "$dir/server.key.tmp"
  chmod 0600 "$dir/server.key.tmp"
  chmod 0644 "$dir/server.crt.tmp"
  mv "$dir/server.key.tmp" "$dir/server.key"
  mv "$dir/server.crt.tmp" "$dir/server.crt"
  printf '%s' '{san}' > "$dir/server.san"
  rm -f "$dir/server.csr" "$dir/server.ext"
  echo "edgekit: new Postgres server certificate for {san}, valid {SERVER_DAYS} days"
  if command -v systemctl >/dev/null && systemctl is-active --quiet postgresql.service; then
    systemctl reload postgresql.service
  fi
fi
echo "{LOG_MARK} $(base64 -w0 "$dir/ca.crt")"
"""


def tls_unit(*, hostnames: Sequence[str], addresses: Sequence[str],
             publish: Mapping[str, str] | None = None, directory: str = TLS_DIR,
             owner: str = "postgres") -> dict[str, Any]:
    """The unit as data for ``nix/node.nix``: name, directory, script, and where
    `PUBLISH_UNIT` PUTs the authority's certificate (``{endpoint, bucket, key,
    credentials}``; None: not published)."""
    return {"unit": TLS_UNIT, "directory": directory,
            "script": certificate_script(hostnames=hostnames, addresses=addresses,
                                         directory=directory, owner=owner),
            "publish": None if publish is None else {
                "unit": PUBLISH_UNIT, "file": f"{directory}/ca.crt", **publish}}
