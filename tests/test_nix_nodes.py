"""Every node of every environment, evaluated against the vendored upstream NixOS modules
(issue 21, ADR 0023): `edgekit.nix.evaluate.evaluate_nodes` runs the repository's own
flake.nix through nix/eval/ with Debian's real nix-instantiate. These tests read that
evaluation, not our own data: the units upstream's postgresql.nix generates, their sandbox,
the package 25.11 selects, the files each unit reads."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from edgekit.cue.model import Estate
from edgekit.nix.evaluate import INSTALL_HINT, NixError, evaluate_node, evaluate_nodes
from tests.conftest import ROOT

pytestmark = pytest.mark.tools

NODES = {"edge-1": "prod", "edge-2": "prod", "edge-tokyo": "prod", "pg-tokyo": "prod",
         "staging-1": "staging"}
PG_NODES = ("pg-tokyo", "staging-1")


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    if shutil.which("nix-instantiate") is None:
        pytest.fail(f"nix-instantiate is not installed; install it: {INSTALL_HINT}")
    return evaluate_nodes(ROOT)


def test_every_node_of_every_environment_is_evaluated(reports: dict[str, Any]) -> None:
    expected = {node: env for env in Estate.env_names(ROOT)
                for node in Estate.load(ROOT, env, check_fresh=False).env.nodes}
    assert expected == NODES
    assert {name: r["env"] for name, r in reports.items()} == expected


@pytest.mark.parametrize("node", PG_NODES)
def test_generated_postgresql_settings_are_accepted_by_the_real_module(node: str) -> None:
    """Defect 4 of the spike: nix/postgresql/<env>.json kept its "//" key, and upstream's
    postgresql.nix has no such option: the node did not evaluate at all."""
    report = evaluate_node(NODES[node], node, ROOT)
    assert report["postgresql"] is not None
    assert "//" not in report["postgresql"]["settings"]


def test_a_node_of_another_environment_is_refused() -> None:
    with pytest.raises(NixError, match=r"environment 'staging' has no node 'edge-1' "
                                       r"\(its nodes: staging-1\)"):
        evaluate_node("staging", "edge-1", ROOT)


@pytest.mark.parametrize("node", sorted(NODES))
def test_no_failed_upstream_assertion_and_no_warning(reports: dict[str, Any], node: str) -> None:
    report = reports[node]
    assert report["failedAssertions"] == []
    assert report["warnings"] == []
    assert report["sinkDefinitions"] == []  # only vendored modules write the sinks
    assert report["stateVersion"] == "25.11"
    assert report["hostName"] == node


def test_the_unit_script_paths_are_what_the_units_run(reports: dict[str, Any]) -> None:
    """The report's script files are the ones upstream's makeJobScript wrote (a harness
    materializes them at these paths)."""
    seen = 0
    for report in reports.values():
        for name, unit in report["services"].items():
            for kind, script in unit["scripts"].items():
                seen += 1
                config = unit["serviceConfig"]
                runs = {"script": [config.get("ExecStart", "").strip()],
                        "preStart": config.get("ExecStartPre", [])}.get(kind)
                if runs is not None:
                    assert script["path"] in runs, (name, kind)
                assert script["file"].startswith("#!/nix/store/")
                assert unit[kind] in script["file"]
    assert seen > 10


def _etc_reads(unit: dict[str, Any]) -> set[str]:
    texts = [s["file"] for s in unit["scripts"].values()]
    for key in ("ExecStart", "ExecStartPre", "ExecStartPost"):
        value = unit["serviceConfig"].get(key, [])
        texts += value if isinstance(value, list) else [value]
    found = set()
    for text in texts:
        found |= set(re.findall(r"(/etc/[A-Za-z0-9_./-]+[A-Za-z0-9_])", text))
    return found


# Files under /etc that no NixOS module writes, with who does.
ETC_FROM_BOOT = {
    "/etc/edgekit/boot.json": "the boot document: written by cloud-init at first boot "
                              "(edgekit.constructs.boot), kept by nixos-infect's lustrate",
}


@pytest.mark.parametrize("node", sorted(NODES))
def test_every_etc_file_a_unit_reads_exists(reports: dict[str, Any], node: str) -> None:
    """Defect 1 of the spike: edgekit-pg-bootstrap runs psql -f /etc/edgekit/pg-bootstrap.sql
    and pg-password-<role>.sql, and nothing wrote them."""
    report = reports[node]
    etc = {f"/etc/{e['target']}" for e in report["etc"].values()}
    missing: dict[str, list[str]] = {}
    for name, unit in report["services"].items():
        for path in _etc_reads(unit) - etc - set(ETC_FROM_BOOT):
            missing.setdefault(name, []).append(path)
    assert missing == {}


@pytest.mark.parametrize("node", PG_NODES)
def test_bootstrap_sql_files_hold_no_password(reports: dict[str, Any], node: str) -> None:
    """The SQL files are in the (world-readable) store: the passwords are read at run time
    from /run/keys/edgekit-pg/<role> (ADR 0004/0008), never part of them."""
    report = reports[node]
    unit = report["services"]["edgekit-pg-bootstrap"]
    files = {f"/etc/{e['target']}": e for e in report["etc"].values()}
    used = sorted(p for p in _etc_reads(unit) if p.startswith("/etc/edgekit/pg-"))
    assert used and all(p in files for p in used)
    for path in used:
        text = files[path]["text"]
        assert "PASSWORD '" not in text.upper().replace(" :'", "")
        if "password" in path:
            assert "\\set password `cat :'password_file'`" in text
            assert "ALTER ROLE" in text and "PASSWORD :'password'" in text
    assert "edgekit-keys.service" in unit["after"]  # the key files exist before it runs


def _conf(report: dict[str, Any]) -> dict[str, str]:
    text = report["etc"]["pgbackrest/pgbackrest.conf"]["text"]
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@pytest.mark.parametrize("node", PG_NODES)
def test_postgres_major_and_data_directory_come_from_the_evaluated_module(
        reports: dict[str, Any], node: str) -> None:
    """Defect 2 of the spike: pgBackRest's pg1-path named PostgreSQL 16's directory while
    NixOS 25.11 runs 17. Every consumer now uses the evaluated services.postgresql."""
    from edgekit.pg.backup import settings_for

    report = reports[node]
    pg = report["postgresql"]
    major, data_dir = pg["package"]["major"], pg["dataDir"]
    assert data_dir == f"/var/lib/postgresql/{major}"
    assert _conf(report)["pg1-path"] == data_dir  # WAL archiving and every backup
    estate = Estate.load(ROOT, NODES[node], check_fresh=False)
    assert settings_for(estate.env).pg_path == data_dir  # `edgekit pg` (backups, restore)
    mount = report["fileSystems"]["/var/lib/postgresql"]
    assert data_dir.startswith("/var/lib/postgresql/")
    assert mount["device"] == "/dev/disk/by-label/edgekit-pgdata"
    unit = report["services"]["postgresql"]
    assert "/var/lib/postgresql" in unit["unitConfig"]["RequiresMountsFor"]
    assert data_dir in unit["unitConfig"]["RequiresMountsFor"]
    assert unit["environment"]["PGDATA"] == data_dir
    # the one Python-side value: the major the boot document and PgPrimary state
    from edgekit.constructs.pg_major import PG_MAJOR
    assert major == str(PG_MAJOR)


def _writable(config: dict[str, Any]) -> list[str] | None:
    """Paths a unit may write, or None when its file system is not read-only."""
    protect = config.get("ProtectSystem")
    if config.get("DynamicUser") is True:  # implies ProtectSystem=strict and PrivateTmp
        protect = "strict"
        config = {**config, "PrivateTmp": True}
    if protect not in ("strict", True, "full", "yes"):
        return None
    def words(key: str) -> list[str]:
        value = config.get(key, [])
        items = value if isinstance(value, list) else [value]
        return [w.lstrip("-") for item in items for w in str(item).split()]
    paths = words("ReadWritePaths")
    for key, base in (("StateDirectory", "/var/lib"), ("RuntimeDirectory", "/run"),
                      ("LogsDirectory", "/var/log"), ("CacheDirectory", "/var/cache")):
        paths += [f"{base}/{d}" for d in words(key)]
    if config.get("PrivateTmp") is True:
        paths += ["/tmp", "/var/tmp"]
    if protect != "strict":  # full/true: only /usr, /boot, /efi (and /etc for full) read-only
        paths += ["/var", "/run", "/tmp", "/home", "/root", "/srv", "/opt"]
    return paths


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


@pytest.mark.parametrize("node", PG_NODES)
def test_pgbackrest_paths_are_writable_inside_postgresql_service(
        reports: dict[str, Any], node: str) -> None:
    """Defect 3 of the spike: upstream runs postgresql.service with ProtectSystem=strict,
    and archive_command (pgBackRest inside that sandbox) writes its spool, lock and log."""
    report = reports[node]
    conf = _conf(report)
    unit = report["services"]["postgresql"]
    assert unit["serviceConfig"]["ProtectSystem"] == "strict"  # as upstream sets it
    assert "edgekit-pgbackrest" in report["postgresql"]["settings"]["archive_command"]
    writable = _writable(unit["serviceConfig"])
    assert writable is not None
    wanted = [conf["spool-path"], conf["lock-path"], conf["log-path"],
              report["postgresql"]["dataDir"]]
    assert [p for p in wanted if not _under(p, writable)] == []
    # and the folders exist before Postgres starts (tmpfiles, owned by postgres)
    rules = report["tmpfiles"]
    for path in (conf["spool-path"], conf["lock-path"], conf["log-path"]):
        assert f"d {path} 0750 postgres postgres -" in rules


@pytest.mark.parametrize("node", sorted(NODES))
def test_every_sandboxed_unit_writes_only_where_it_may(reports: dict[str, Any],
                                                       node: str) -> None:
    """The paths each of our units writes (its StateDirectory-style folders and the files
    its scripts create) are writable under the sandbox upstream or we set."""
    report = reports[node]
    for name, unit in report["services"].items():
        writable = _writable(unit["serviceConfig"])
        if writable is None:
            continue
        writes = re.findall(r"(?:>|mkdir -p|touch|install -d[^/]*)\s*\"?(/[A-Za-z0-9_./-]+)",
                            "\n".join(s["file"] for s in unit["scripts"].values()))
        if name == "vector":  # its disk buffer (ADR 0017)
            writes.append(report["vector"]["settings"]["data_dir"])
        kernel = ["/dev", "/proc", "/sys"]  # API file systems stay writable under strict
        assert [p for p in writes if not _under(p, writable + kernel)] == [], name


def test_pg_primary_states_the_major_the_node_runs() -> None:
    """PgPrimary's version reached no node (NixOS picked its own); now it is the pinned
    major, and another one is refused rather than silently not run."""
    from edgekit import App, LocalState, Needs, PgPrimary, PrivateNetwork, Service, Stack, VpsNode
    from edgekit.clouds import PROVIDERS
    from edgekit.constructs.pg_major import PG_MAJOR
    from edgekit.core.errors import ConstructError

    def primary(**extra: Any) -> PgPrimary:
        stack = Stack(App(), "prod", state=LocalState())
        net = PrivateNetwork(stack, "net", provider=PROVIDERS[-1], region="singapore")
        db = VpsNode(stack, "db", provider=PROVIDERS[-1], region="singapore", size="medium",
                     roles=["postgres"], networks=[net], repository="github:example/estate",
                     ref="deploy/prod")
        return PgPrimary(stack, "postgres", node=db, services={
            "api": Service(name="api", port=8080, needs=Needs(postgres="rw"))}, **extra)

    assert primary().host.boot["postgres"]["version"] == PG_MAJOR == 17
    with pytest.raises(ConstructError, match=r"version 16: the node runs PostgreSQL 17"):
        primary(version=16)


@pytest.mark.parametrize("node", sorted(NODES))
def test_glued_service_units_are_what_the_constructs_promised(reports: dict[str, Any],
                                                              node: str) -> None:
    """Each placed service runs as its own DynamicUser with exactly the composed
    environment (nix/compose.nix == edgekit/nix/compose.py), gets only its own Postgres
    password as a credential, starts after its keys exist, and speaks OTLP to the
    node's Vector where Vector listens."""
    from edgekit.nix.compose import compose_estate

    report = reports[node]
    composed = compose_estate(Estate.load(ROOT, NODES[node], check_fresh=False))[node]
    keys = report["services"]["edgekit-keys"]
    vector_http = report["vector"]["settings"]["sources"]["otel"]["http"]["address"]
    glued = sorted(n for n in report["services"]
                   if n.startswith("edgekit-") and n.removeprefix("edgekit-") in composed["env"])
    assert glued == sorted(f"edgekit-{s}" for s in composed["services"])
    for svc in composed["services"]:
        unit = report["services"][f"edgekit-{svc}"]
        config = unit["serviceConfig"]
        assert config["DynamicUser"] is True and "User" not in config
        env = {k: v for k, v in unit["environment"].items() if k != "PATH"}
        assert {k: env.get(k) for k in composed["env"][svc]} == composed["env"][svc]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{vector_http}"
        role = composed["env"][svc].get("PGUSER")
        assert config.get("LoadCredential", []) == (
            [f"pgpassword:/run/keys/edgekit-pg/{role}"] if role else [])
        assert f"edgekit-{svc}.service" in keys["before"]
        assert "network-online.target" in unit["after"]
        assert unit["wantedBy"] == ["multi-user.target"]
    # services bring no static users: upstream's root and nobody, and postgres on the primary
    assert report["users"].keys() - {"root", "nobody"} <= {"postgres"}


# Units and targets systemd or NixOS itself provides (not evaluated here: systemd.nix and the
# rest of NixOS are not vendored).
SYSTEM_UNITS = {"multi-user.target", "network-online.target", "network.target",
                "network-pre.target", "timers.target", "sysinit.target", "shutdown.target",
                "systemd-modules-load.service"}


@pytest.mark.parametrize("node", sorted(NODES))
def test_every_unit_a_unit_orders_itself_by_exists(reports: dict[str, Any], node: str) -> None:
    """A misspelt or missing unit in after/requires/wants/before is silently ignored by
    systemd; every name must be an evaluated unit, a mount of fileSystems, or systemd's."""
    report = reports[node]
    known = ({f"{n}.service" for n in report["services"]}
             | {f"{n}.target" for n in report["targets"]}
             | {f"{n}.timer" for n in report["timers"]}
             | {m.strip("/").replace("-", "\\x2d").replace("/", "-") + ".mount"
                for m in report["fileSystems"] if m != "/"}
             | SYSTEM_UNITS)
    unknown: dict[str, list[str]] = {}
    for name, unit in report["services"].items():
        for key in ("after", "before", "requires", "wants", "wantedBy", "requiredBy",
                    "partOf", "bindsTo"):
            for other in unit[key]:
                if other not in known:
                    unknown.setdefault(name, []).append(f"{key}: {other}")
    assert unknown == {}


def test_upstream_assertions_are_evaluated() -> None:
    """The assertions come from the vendored modules: a user without a group, or a
    WireGuard interface without a key, fails them (so an empty list above means something)."""
    from tests.test_nix import evaluate_modules
    failed = evaluate_modules(
        "[ { users.users.ghost = { isSystemUser = true; }; "
        "networking.wireguard.interfaces.wg9.ips = [ \"10.9.0.1/24\" ]; } ]",
        "r.failedAssertions")
    assert any("users.users.ghost.group is unset" in m for m in failed)
    assert any("Either networking.wireguard.interfaces.wg9.privateKey or "
               "networking.wireguard.interfaces.wg9.privateKeyFile must be set." in m
               for m in failed)


def test_etc_is_upstreams_etc_nix() -> None:
    """`environment.etc` is declared and built by the vendored etc.nix, not a stand-in: a
    text entry's source is upstream's store file (named etc-<name, '/' -> '-'>), a wrong
    type of an entry option is refused by upstream's declaration, and the script upstream
    builds /etc with (system.build.etc) links every enabled entry and no other."""
    from tests.test_nix import evaluate_modules
    found = evaluate_modules(
        "[ { environment.etc.\"edgekit/a.conf\".text = \"x\"; "
        "environment.etc.\"off.conf\" = { text = \"y\"; enable = false; }; } ]",
        "{ source = toString c.environment.etc.\"edgekit/a.conf\".source; "
        "builder = c.system.build.etc.text; "
        "overlay = c.system.etc.overlay.enable; "
        "standin = c.edgekit.standins.allowances ? \"environment.etc\"; }")
    assert found["source"].endswith("-etc-edgekit-a.conf"), found
    assert found["overlay"] is False and found["standin"] is False
    entries = [line.strip() for line in found["builder"].splitlines()
               if line.strip().startswith("makeEtcEntry ")]
    assert entries == [f"makeEtcEntry {found['source']} edgekit/a.conf symlink +0 +0"]
    with pytest.raises(NixError, match=r"environment\.etc\.\"x\.conf\"\.mode"):
        evaluate_modules("[ { environment.etc.\"x.conf\" = { text = \"z\"; mode = 600; }; } ]",
                         "r.etc")


@pytest.mark.parametrize("node", ["pg-tokyo"])
def test_the_hyperdrive_line_admits_only_the_address_cloudflared_dials(
        reports: dict[str, Any], node: str, tmp_path: Path) -> None:
    """The joint of issue 22's Hyperdrive defect, read from both ends: the address the
    synthesized tunnel ingress makes cloudflared dial (a local address of the primary, so the
    kernel gives the connection that address as its source, ADR 0025) is the one address the
    evaluated pg_hba admits Hyperdrive's role from, as a /32 over TLS; no other line admits
    anything from an address of the primary."""
    import ipaddress

    from edgekit.constructs.hyperdrive import hyperdrive_service
    from tests.test_first_apply import edge_doc, observed

    estate = Estate.load(ROOT, NODES[node], check_fresh=False)
    doc = edge_doc(tmp_path, observed(estate, "10.2.0.3"))
    tunnels = doc["resource"]["cloudflare_zero_trust_tunnel_cloudflared_config"]
    (tunnel,) = [c for name, c in tunnels.items() if "hyperdrive" in name]
    dial = re.fullmatch(r"tcp://([0-9.]+):(\d+)", tunnel["config"]["ingress"][0]["service"])
    assert dial is not None
    pg = reports[node]["postgresql"]
    assert dial.group(1) in pg["settings"]["listen_addresses"].split(",")
    assert int(dial.group(2)) == pg["settings"]["port"]
    reader = hyperdrive_service(estate.services)
    assert reader is not None
    own = {ipaddress.ip_network(a) for a in pg["settings"]["listen_addresses"].split(",")}
    admitting = [line.split() for line in pg["authentication"].splitlines()
                 if line.startswith("host") and not line.endswith("reject")]
    from_primary = [words for words in admitting
                    if any(ipaddress.ip_network(words[3], strict=False).overlaps(a) for a in own)]
    assert from_primary == [["hostssl", reader.pg_database, reader.pg_role,
                             f"{dial.group(1)}/32", "scram-sha-256"]]
