"""Roles, databases, schemas and grants of the one writable Postgres primary, as data.

Pure functions: services in, SQL text and NixOS settings out; nothing here touches a
disk, a network or a server. See ``adr/0004-postgres-bootstrap.md`` for the decision.

Naming, for a service whose ``Service.pg_database`` is ``<db>`` (``api``, ``web``):

- database ``<db>``, owned by the role ``<db>_owner`` (NOLOGIN);
- schema ``app`` in that database, owned by ``<db>_owner``; the service's tables live there;
- login role ``Service.pg_role`` (``svc_<db>_rw`` or ``svc_<db>_ro``), LOGIN, no password in
  any SQL this module renders (see `password_sql`), ``search_path = app``; CONNECT on its own
  database only, USAGE on ``app``, and

  - ``rw``: SELECT, INSERT, UPDATE, DELETE on tables and USAGE, SELECT, UPDATE on sequences
    in ``app``, now and (default privileges of ``<db>_owner``) in the future;
  - ``ro``: SELECT on tables in ``app``, now and in the future, plus
    ``default_transaction_read_only = on`` as a second line of defence.

- PUBLIC loses every privilege on each service database and on its ``public`` schema, so no
  role reaches another service's database.

Schema changes (migrations) run as ``<db>_owner`` (``SET ROLE <db>_owner`` as the superuser):
the login roles can create nothing, and default privileges only cover objects the owner creates.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from edgekit.constructs.pg_major import PG_MAJOR
from edgekit.constructs.pg_tls import postgres_ssl_settings, tls_unit
from edgekit.constructs.values import Service

APP_SCHEMA = "app"
"""The schema that holds each service's tables."""

NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""Every role, database and schema name: lower case, at most 63 bytes, no quoting surprises."""

RESERVED_DATABASES = frozenset(
    {"postgres", "template0", "template1", "all", "sameuser", "samerole", "samegroup",
     "replication"}
)
"""Database names a service cannot have: Postgres' own, and pg_hba keywords."""

BOOTSTRAP_UNIT = "edgekit-pg-bootstrap"
"""The systemd oneshot unit that applies `bootstrap_sql` after postgresql starts."""

BOOTSTRAP_SCRIPT = "/etc/edgekit/pg-bootstrap.sql"
"""Where the node keeps the rendered `bootstrap_sql`."""

PASSWORD_DIR = "/run/keys/edgekit-pg"
"""Default directory of the password files, one per login role, named after the role."""

EDGEKIT_KEY = "edgekit"
"""The one key of `nixos_postgresql`'s result that is not a ``services.postgresql`` option."""

_TABLE_PRIVILEGES: Mapping[str, str] = {
    "rw": "SELECT, INSERT, UPDATE, DELETE",
    "ro": "SELECT",
}
_SEQUENCE_PRIVILEGES: Mapping[str, str | None] = {"rw": "USAGE, SELECT, UPDATE", "ro": None}
_ROLE_SAFETY = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it matches `NAME_PATTERN`; raise ValueError naming it otherwise."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"bad Postgres {what} {name!r}: expected {NAME_PATTERN.pattern} "
            "(lower-case letters, digits and '_', not starting with a digit, at most 63 bytes)"
        )
    if name.startswith("pg_"):
        raise ValueError(f"bad Postgres {what} {name!r}: the prefix 'pg_' is reserved")
    return name


def quote_ident(name: str) -> str:
    """Quote an SQL identifier: always double-quoted, embedded quotes doubled."""
    if "\x00" in name:
        raise ValueError(f"bad SQL identifier {name!r}: contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote an SQL string literal (standard_conforming_strings on: only ' is special)."""
    if "\x00" in text:
        raise ValueError(f"bad SQL literal {text!r}: contains a NUL byte")
    return "'" + text.replace("'", "''") + "'"


def owner_role(database: str) -> str:
    """The NOLOGIN role that owns `database` and its schema ``app``: ``<database>_owner``."""
    return validate_name(f"{database}_owner", "owner role")


StepKind = Literal["exec", "gexec"]


@attrs.frozen
class SqlStep:
    """Run `sql` as the superuser, connected to `database`.

    ``kind="exec"``: `sql` is a batch of statements; run it as one transaction.
    ``kind="gexec"``: `sql` is one query (no trailing ``;``); run it, then execute every
    non-null value of every row it returns as a statement of its own, outside any
    transaction block (psql's ``\\gexec``). It carries ``CREATE DATABASE``, which can run
    neither in a transaction block nor in a DO block.
    """

    database: str
    sql: str
    kind: StepKind = "exec"


@attrs.frozen
class _Db:
    """One service's slice of the primary."""

    service: str
    database: str
    owner: str
    login: str
    mode: Literal["ro", "rw"]


def _databases(services: Mapping[str, Service]) -> list[_Db]:
    """The services that need Postgres, validated, sorted by database name."""
    found: list[_Db] = []
    for key in sorted(services):
        service = services[key]
        mode, database, login = service.needs.postgres, service.pg_database, service.pg_role
        if mode is None or database is None or login is None:
            continue
        where = f"service {service.name!r}"
        try:
            validate_name(database, "database")
            validate_name(login, "login role")
            owner = owner_role(database)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if database in RESERVED_DATABASES:
            raise ValueError(f"{where}: bad Postgres database {database!r}: the name is reserved")
        found.append(_Db(service.name, database, owner, login, mode))
    databases: dict[str, str] = {}
    roles: dict[str, str] = {}
    for db in found:
        for name, seen in ((db.database, databases), (db.owner, roles), (db.login, roles)):
            if name in seen:
                raise ValueError(
                    f"service {db.service!r}: Postgres name {name!r} is also used by "
                    f"service {seen[name]!r}"
                )
            seen[name] = db.service
    return sorted(found, key=lambda db: db.database)


def _ensure_role(role: str, *, login: bool) -> str:
    can_login = "LOGIN" if login else "NOLOGIN"
    return (
        "DO $$\nBEGIN\n"
        f"  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {quote_literal(role)})"
        " THEN\n"
        f"    CREATE ROLE {quote_ident(role)} {can_login};\n"
        "  END IF;\nEND\n$$;\n"
        f"ALTER ROLE {quote_ident(role)} {can_login} {_ROLE_SAFETY};"
    )


def _roles_sql(dbs: list[_Db]) -> str:
    parts = ["-- Roles: one NOLOGIN owner per database, one login role per service."]
    for db in dbs:
        login = quote_ident(db.login)
        parts += [
            f"-- service {db.service} ({db.mode})",
            _ensure_role(db.owner, login=False),
            _ensure_role(db.login, login=True),
            f"ALTER ROLE {login} SET search_path = {quote_ident(APP_SCHEMA)};",
        ]
        if db.mode == "ro":
            parts.append(f"ALTER ROLE {login} SET default_transaction_read_only = on;")
    return "\n".join(parts)


def _create_database_sql(db: _Db) -> str:
    statement = f"CREATE DATABASE {quote_ident(db.database)} OWNER {quote_ident(db.owner)}"
    return (
        f"SELECT {quote_literal(statement)}\n"
        "WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database "
        f"WHERE datname = {quote_literal(db.database)})"
    )


def _database_privileges_sql(dbs: list[_Db]) -> str:
    parts = ["-- Databases: owned by their owner role, reachable only by their service."]
    for db in dbs:
        name = quote_ident(db.database)
        parts += [
            f"ALTER DATABASE {name} OWNER TO {quote_ident(db.owner)};",
            f"REVOKE ALL ON DATABASE {name} FROM PUBLIC;",
            f"GRANT CONNECT ON DATABASE {name} TO {quote_ident(db.login)};",
        ]
    return "\n".join(parts)


def _schema_sql(db: _Db) -> str:
    schema, owner, login = quote_ident(APP_SCHEMA), quote_ident(db.owner), quote_ident(db.login)
    tables = _TABLE_PRIVILEGES[db.mode]
    sequences = _SEQUENCE_PRIVILEGES[db.mode]
    defaults = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema}"
    parts = [
        f"-- Database {db.database}: schema {APP_SCHEMA} for service {db.service} ({db.mode}).",
        f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner};",
        f"ALTER SCHEMA {schema} OWNER TO {owner};",
        "DO $$\nBEGIN\n"
        "  IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'public') THEN\n"
        "    REVOKE ALL ON SCHEMA public FROM PUBLIC;\n"
        "  END IF;\nEND\n$$;",
        f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;",
        f"GRANT USAGE ON SCHEMA {schema} TO {login};",
        f"GRANT {tables} ON ALL TABLES IN SCHEMA {schema} TO {login};",
        f"{defaults} GRANT {tables} ON TABLES TO {login};",
    ]
    if sequences:
        parts += [
            f"GRANT {sequences} ON ALL SEQUENCES IN SCHEMA {schema} TO {login};",
            f"{defaults} GRANT {sequences} ON SEQUENCES TO {login};",
        ]
    return "\n".join(parts)


def bootstrap_steps(services: Mapping[str, Service]) -> list[SqlStep]:
    """The idempotent bootstrap as steps, in order; services without Postgres are skipped.

    1. in ``postgres``: create the owner and login roles if missing, set their attributes;
    2. in ``postgres``, one ``gexec`` step per database: ``CREATE DATABASE`` if missing;
    3. in ``postgres``: database owners, ``REVOKE ALL ... FROM PUBLIC``, CONNECT grants;
    4. in each service database: schema ``app`` and the grants on it.

    Re-running every step on a bootstrapped server changes nothing. Raises ValueError
    (naming the service and the name) for a name outside `NAME_PATTERN`, a reserved
    database name, or two services that would share a name.
    """
    dbs = _databases(services)
    if not dbs:
        return []
    steps = [SqlStep("postgres", _roles_sql(dbs))]
    steps += [SqlStep("postgres", _create_database_sql(db), "gexec") for db in dbs]
    steps.append(SqlStep("postgres", _database_privileges_sql(dbs)))
    steps += [SqlStep(db.database, _schema_sql(db)) for db in dbs]
    return steps


_HEADER = """\
-- Generated by edgekit (edgekit.constructs.pg_bootstrap); do not edit.
-- Idempotent bootstrap of roles, databases, schemas and grants. No passwords here.
-- Run as the superuser:  psql -X -v ON_ERROR_STOP=1 -d postgres -f {script}
\\set ON_ERROR_STOP on"""


def bootstrap_sql(services: Mapping[str, Service]) -> str:
    """`bootstrap_steps` as one psql script: ``\\connect <db>`` between steps of different
    databases, each ``exec`` step in ``BEGIN``/``COMMIT``, each ``gexec`` step ended by
    ``\\gexec``. Safe to run again and again."""
    lines = [_HEADER.format(script=BOOTSTRAP_SCRIPT)]
    current: str | None = None
    for step in bootstrap_steps(services):
        if step.database != current:
            lines += ["", f"\\connect {validate_name(step.database, 'database')}"]
            current = step.database
        if step.kind == "gexec":
            lines += [step.sql, "\\gexec"]
        else:
            lines += ["BEGIN;", step.sql, "COMMIT;"]
    return "\n".join(lines) + "\n"


def password_sql(role: str) -> str:
    """psql snippet that sets the password of login role `role`; the password is not in it.

    The node runs it as the superuser, once per login role, at boot (after `bootstrap_sql`):

        psql -X -v ON_ERROR_STOP=1 -d postgres \\
             -v password_file=/run/keys/edgekit-pg/<role> -f <snippet>

    It reads the file named by the psql variable ``password_file`` (trailing newline
    dropped) into the variable ``password``; a caller may instead set ``password`` itself.
    The password then travels only as the quoted psql variable ``:'password'``: it is in no
    file edgekit writes, in no argv, and statement logging is switched off for the session
    so the server log does not get it either. Re-running it is harmless. A missing or empty
    file stops it with an error naming the role (psql would otherwise go on with an empty
    value, and an empty password clears the role's), leaving the password as it was.
    """
    quoted = quote_ident(validate_name(role, "login role"))
    missing = quote_literal(
        f"edgekit: no password for role {role}: its password file is missing or empty; "
        "the role keeps the password it has")
    return "\n".join([
        f"-- Set the password of the login role {role} (edgekit pg_bootstrap.password_sql).",
        "-- Needs the psql variable password_file (or password); see ADR 0004.",
        "\\set ON_ERROR_STOP on",
        "\\if :{?password_file}",
        "\\set password `cat :'password_file'`",
        "\\endif",
        "SET log_statement = 'none';",
        "SET log_min_duration_statement = -1;",
        "SET log_min_error_statement = panic;",
        # psql goes on with an empty value when `cat` fails: stop instead of clearing it
        "SELECT :'password' = '' AS edgekit_no_password \\gset",
        "\\if :edgekit_no_password",
        f"DO $$ BEGIN RAISE EXCEPTION {missing}; END $$;",
        "\\endif",
        "SET password_encryption = 'scram-sha-256';",
        f"ALTER ROLE {quoted} PASSWORD :'password';",
        "\\unset password",
        "",
    ])


def _private_network(private_cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        network = ipaddress.ip_network(private_cidr, strict=True)
    except ValueError as error:
        raise ValueError(f"bad private_cidr {private_cidr!r}: {error}") from None
    if network.prefixlen == 0 or not network.is_private:
        raise ValueError(
            f"bad private_cidr {private_cidr!r}: Postgres accepts logins only from a private "
            "network range (such as 10.0.0.0/16)"
        )
    return network


def _listen(listen_address: str,
            network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    refusal = (
        f"bad listen_address {listen_address!r}: Postgres must listen only on the private "
        f"address of its node (an address in {network})"
    )
    try:
        address = ipaddress.ip_address(listen_address)
    except ValueError:
        raise ValueError(refusal) from None
    if address.is_unspecified or not address.is_private or address not in network:
        raise ValueError(refusal)
    return str(address)


def nixos_postgresql(
    services: Mapping[str, Service],
    *,
    listen_address: str,
    private_cidr: str,
    port: int = 5432,
    password_dir: str = PASSWORD_DIR,
    tls_hostnames: Sequence[str] = (),
    hyperdrive: Service | None = None,
    publish_ca: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``services.postgresql`` for the primary's node, as plain (JSON-able) data.

    NixOS makes the server, the databases (``ensureDatabases``) and the login roles
    (``ensureUsers`` with ``ensureClauses.login``); ownership, schemas and grants are left to
    `bootstrap_sql`, run by a oneshot unit. ``authentication`` lets each login role reach
    only its own database, from `private_cidr`, over TLS (``hostssl``) with scram-sha-256, and
    rejects every other TCP login (NixOS appends its default lines after these, so they never
    match over TCP; the superuser keeps its local socket). With `hyperdrive` (the service
    whose role Hyperdrive logs in as), one more line admits that role from `listen_address`
    alone: cloudflared runs on this node and dials the listen address, so the kernel gives
    its connection that address as its source (ADR 0025). TLS is on (`pg_tls`): the server
    certificate names `tls_hostnames` (the Hyperdrive hostname) and `listen_address`. Postgres
    listens on `listen_address` only: a wildcard, a public address or one outside
    `private_cidr` raises ValueError.

    Every key but one is a ``services.postgresql`` option. The key `EDGEKIT_KEY`
    (``"edgekit"``) is not; remove it before assigning the rest, and use it to build the
    oneshot unit:

    - ``unit``: the systemd service name (`BOOTSTRAP_UNIT`); ``after``/``requires``: its
      ordering (``postgresql-setup.service`` runs ``ensure*`` in recent NixOS);
    - ``script``: where the node keeps `bootstrap_sql` (`BOOTSTRAP_SCRIPT`);
    - ``passwords``: per login role, the ``file`` holding its password (written from an
      OpenTofu ``random_password``) and the ``sql`` path of its `password_sql` snippet;
    - ``commands``: the argv lists the unit runs, in order, as the ``postgres`` user;
    - ``mkForce``: option paths the NixOS glue must set with ``lib.mkForce``, because the
      postgresql module defines them itself (``listen_addresses`` from ``enableTCPIP``);
    - ``tls``: the unit that makes the node's certificate authority and server certificate
      (`pg_tls.tls_unit`), ordered before ``postgresql.service``; with `publish_ca`
      (``{endpoint, bucket, key, credentials}``) its ``publish`` entry says where the
      authority's certificate goes for ``edgekit pg import-ca`` (ADR 0025);
    - ``major``: `PG_MAJOR`, the package the node pins (``pkgs.postgresql_<major>``);
    - ``files``: path under /etc -> text: the scripts the unit runs (`bootstrap_sql` and one
      `password_sql` per role). None holds a password (each reads its role's key file at
      run time), so they go to the store through ``environment.etc`` (ADR 0023).
    """
    network = _private_network(private_cidr)
    listen = _listen(listen_address, network)
    if not 1 <= port <= 65535:
        raise ValueError(f"bad port {port}: expected 1..65535")
    dbs = _databases(services)
    directory = password_dir.rstrip("/")
    width_db = max([len("all"), *(len(db.database) for db in dbs)])
    width_role = max([len("all"), *(len(db.login) for db in dbs)])
    width_net = max(len(str(network)), len("0.0.0.0/0"))

    def hba(database: str, role: str, address: str, method: str, kind: str = "hostssl") -> str:
        return (f"{kind:<7} {database:<{width_db}}  {role:<{width_role}}  "
                f"{address:<{width_net}}  {method}")

    authentication = [
        "# edgekit: each service's login role reaches only its own database, from the "
        "private network, over TLS.",
        *(hba(db.database, db.login, str(network), "scram-sha-256") for db in dbs),
        *hyperdrive_hba(hyperdrive, listen),
        "# edgekit: no other login over TCP.",
        hba("all", "all", "0.0.0.0/0", "reject", "host"),
        hba("all", "all", "::/0", "reject", "host"),
    ]
    passwords = {
        db.login: {
            "file": f"{directory}/{db.login}",
            "sql": f"/etc/edgekit/pg-password-{db.login}.sql",
        }
        for db in dbs
    }
    psql = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]
    commands = [[*psql, "-f", BOOTSTRAP_SCRIPT]] + [
        [*psql, "-v", f"password_file={entry['file']}", "-f", entry["sql"]]
        for entry in passwords.values()
    ]
    return {
        "enable": True,
        "ensureDatabases": [db.database for db in dbs],
        "ensureUsers": [{"name": db.login, "ensureClauses": {"login": True}} for db in dbs],
        "authentication": "\n".join(authentication) + "\n",
        "settings": {
            "listen_addresses": listen,
            "port": port,
            "password_encryption": "scram-sha-256",
            **postgres_ssl_settings(),
        },
        EDGEKIT_KEY: {
            "unit": BOOTSTRAP_UNIT,
            "after": ["postgresql.service", "postgresql-setup.service"],
            "requires": ["postgresql.service"],
            "script": BOOTSTRAP_SCRIPT,
            "passwords": passwords,
            "commands": commands,
            "mkForce": ["settings.listen_addresses"],
            "tls": tls_unit(hostnames=tls_hostnames, addresses=[listen], publish=publish_ca),
            "major": PG_MAJOR,
            "files": {
                BOOTSTRAP_SCRIPT: bootstrap_sql(services),
                **{entry["sql"]: password_sql(role) for role, entry in passwords.items()},
            },
        },
    }


def hyperdrive_hba(service: Service | None, address: str) -> list[str]:
    """The pg_hba line of the Hyperdrive path: `service`'s role, to its database, over TLS,
    from `address` alone (the primary's own listen address: cloudflared on the node dials
    it, so that is its connection's source; ADR 0025). Nothing without a Hyperdrive."""
    if service is None or service.pg_role is None or service.pg_database is None:
        return []
    host = ipaddress.ip_address(address)
    return ["# edgekit: Hyperdrive, through cloudflared on this node (source: its own address)",
            f"hostssl {service.pg_database} {service.pg_role} {host}/{host.max_prefixlen} "
            "scram-sha-256"]
