"""The first boot of every node makes it the node it should be (issue 11).

What can run here runs: the generated conversion command (with stand-ins for the network
and for nixos-infect, in a private mount namespace), the generated secrets script (with
throwaway users), the Vector version check (against stand-in binaries). The rest is the
generated data, evaluated. Each test is named after the failure it prevents.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from edgekit.clouds import CLOUDS
from edgekit.constructs.boot import (
    FIRST_SWITCH_NIX,
    LUSTRATE_KEEP,
    NIXOS_INFECT_SHA256,
    cloud_config,
    first_switch_nix,
    infect_command,
)
from edgekit.cue.model import Estate
from edgekit.nix.compose import compose_estate
from edgekit.nix.evaluate import parse
from edgekit.obs.vector import VECTOR_VERSION
from stacks import make_app
from tests.conftest import ROOT
from tests.test_nix import _node_modules


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    app = make_app(outdir=tmp_path_factory.mktemp("boot") / "out")
    app.disable_schema_check()
    return {r.stack.name: r.document for r in app.synth_results(["prod", "staging"])}


def boot_of(doc: dict[str, Any], node: str) -> dict[str, Any]:
    boot: dict[str, Any] = doc["locals"][f"nodes_{node.replace('-', '_')}_boot"]
    return boot


def stand_ins(folder: Path, infect_body: str) -> Path:
    """curl that 'downloads' a nixos-infect stand-in, and a systemctl that records."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    infect = folder / "nixos-infect"
    infect.write_text(infect_body)
    scripts = {
        "curl": f'#!/bin/sh\nwhile [ "$1" != -o ]; do shift; done\ncp {infect} "$2"\n',
        "systemctl": f"#!/bin/sh\necho \"$*\" >> {folder}/systemctl.log\n",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return bin_dir


# nixos-infect's own lustrate step and reboot, as in its source at NIXOS_INFECT_COMMIT
# (older versions started the file with `>`; this stand-in does, to be stricter).
INFECT = """#!/bin/bash
echo "PROVIDER=${PROVIDER:-} NIXOS_IMPORT=$NIXOS_IMPORT" > /root/infect.env
echo etc/nixos                   > /etc/NIXOS_LUSTRATE
echo etc/resolv.conf            >> /etc/NIXOS_LUSTRATE
echo root/.nix-defexpr/channels >> /etc/NIXOS_LUSTRATE
[ -n "$NO_REBOOT" ] || { echo "would reboot before edgekit could keep /etc/edgekit"; exit 3; }
"""


def run_conversion(tmp_path: Path, provider: str, infect: str,
                   checksum: str | None = None) -> tuple[int, str, str]:
    """Run the generated command; `checksum` None: the stand-in's own (a download of the
    pinned script), else that expected checksum (e.g. the real one: a tampered download)."""
    bin_dir = stand_ins(tmp_path, infect)
    command = infect_command(provider)
    if checksum is None:
        command = command.replace(NIXOS_INFECT_SHA256,
                                  hashlib.sha256(infect.encode()).hexdigest())
    script = textwrap.dedent(f"""\
        set -u
        mount -t tmpfs edgekit-etc /etc && mount -t tmpfs edgekit-root /root
        mount -t tmpfs edgekit-log /var/log
        mkdir -p /etc/edgekit && echo '{{}}' > /etc/edgekit/boot.json
        echo stale > /etc/NIXOS_LUSTRATE
        PATH={bin_dir}:$PATH sh -c {shlex.quote(command)}
        code=$?
        cp /etc/NIXOS_LUSTRATE {tmp_path}/lustrate 2>/dev/null
        cp /root/infect.env {tmp_path}/infect.env 2>/dev/null
        exit $code
        """)
    done = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)
    lustrate = (tmp_path / "lustrate").read_text() if (tmp_path / "lustrate").exists() else ""
    log = tmp_path / "systemctl.log"
    return done.returncode, lustrate, log.read_text() if log.exists() else ""


@pytest.mark.parametrize("provider", sorted(CLOUDS))
def test_lustrate_keeps_etc_edgekit_and_only_then_reboots(tmp_path: Path, provider: str) -> None:
    """nixos-infect rewrites /etc/NIXOS_LUSTRATE and reboots: boot.json was moved to
    /old-root before the first switch could read it."""
    code, lustrate, systemctl = run_conversion(tmp_path, provider, INFECT)
    assert code == 0
    assert lustrate.splitlines() == ["etc/nixos", "etc/resolv.conf",
                                     "root/.nix-defexpr/channels", LUSTRATE_KEEP]
    assert systemctl == "reboot\n"
    env = (tmp_path / "infect.env").read_text()
    assert f"PROVIDER={CLOUDS[provider].infect_provider or ''} " in env
    assert "NIXOS_IMPORT=/etc/edgekit/first-switch.nix" in env


def test_a_failed_conversion_does_not_reboot(tmp_path: Path) -> None:
    code, lustrate, systemctl = run_conversion(tmp_path, "hetzner", "#!/bin/sh\nexit 7\n")
    assert code != 0 and systemctl == "" and lustrate == "stale\n"


def test_a_tampered_nixos_infect_never_runs(tmp_path: Path) -> None:
    """The script is fetched from the network and run as root: it must be the pinned one."""
    assert f"echo '{NIXOS_INFECT_SHA256}  /root/nixos-infect' | sha256sum --check" in \
        infect_command("vultr")
    code, lustrate, systemctl = run_conversion(tmp_path, "vultr", INFECT,
                                               checksum=NIXOS_INFECT_SHA256)
    assert code != 0 and systemctl == "" and lustrate == "stale\n"
    assert not (tmp_path / "infect.env").exists()


def test_first_switch_does_not_kill_its_own_unit(tmp_path: Path) -> None:
    """`nixos-rebuild switch` from a unit the new configuration does not have stops that
    unit (and the switch) half-way: the agent's first switch sets the boot entry, then the
    unit reboots into it (tests/deploy/test_agent.py runs that mode for real)."""
    for provider in CLOUDS:
        (tmp_path / f"{provider}.nix").write_text(first_switch_nix(provider))
        parse(tmp_path / f"{provider}.nix")
    first = "python3 /etc/edgekit/deploy-agent.py first-switch --boot /etc/edgekit/boot.json"
    assert first in FIRST_SWITCH_NIX
    assert "nixos-rebuild switch" not in FIRST_SWITCH_NIX
    assert FIRST_SWITCH_NIX.index(first) < FIRST_SWITCH_NIX.index(
        "touch /var/lib/edgekit/switched") < FIRST_SWITCH_NIX.index("systemctl --no-block reboot")
    assert 'activate(self.config, "boot")' in (ROOT / "edgekit/deploy/agent.py").read_text()


def test_every_provider_converts_to_nixos(docs: dict[str, Any]) -> None:
    """The Linode node booted Debian with a boot document saying `custom-image`, and
    nothing converted it: every provider now runs the same conversion."""
    for stack, node in [("prod", "edge-1"), ("prod", "edge-tokyo"), ("prod", "pg-tokyo"),
                        ("staging", "staging-1")]:
        boot = boot_of(docs[stack], node)
        assert boot["deploy"]["convert"] == "nixos-infect", node
        assert boot["deploy"]["flake"] == boot["deploy"]["follow"]
        assert boot["deploy"]["flake"].endswith(f"?ref=deploy/{stack}#{node}")
        config = docs[stack]["locals"][f"nodes_{node.replace('-', '_')}_cloud_config"]
        assert config["runcmd"] == [infect_command(boot["provider"])], node
    assert cloud_config("x", "linode")["runcmd"] == [infect_command("linode")]


def test_linode_conversion_installs_no_boot_sector() -> None:
    """A Linode disk has no partition table (its GRUB 2 profile reads grub.cfg from the
    filesystem): nixos-infect's generation must not try to install GRUB on it."""
    linode = first_switch_nix("linode")
    assert 'boot.loader.grub.device = lib.mkForce "nodev";' in linode
    assert "nodev" not in first_switch_nix("hetzner")
    document = cloud_config("x", "linode")
    (written,) = [f for f in document["write_files"] if f["path"].endswith("first-switch.nix")]
    assert "mkForce \"nodev\"" in written["content"]
    # and the node's own configuration agrees (nix/base.nix from the adapter's boot facts)
    from edgekit.nix.evaluate import evaluate

    base = evaluate(f'(import {ROOT / "nix/base.nix"} {{ name = "n"; provider = "linode"; }}) '
                    '{ modulesPath = "/modules"; }')
    assert base["boot"]["loader"]["grub"]["device"] == "nodev"
    assert base["boot"]["loader"]["grub"]["forceInstall"] is True
    assert base["boot"]["kernelParams"] == ["console=ttyS0,19200n8"]
    assert base["fileSystems"]["/"]["device"] == "/dev/sda"


# -- Postgres data ------------------------------------------------------------------------

@pytest.mark.parametrize(("stack", "node", "device"), [
    ("prod", "pg-tokyo", "/dev/disk/by-id/virtio-*"),  # vultr: resolved at boot (below)
    ("staging", "staging-1",
     "/dev/disk/by-id/scsi-0HC_Volume_${hcloud_volume.nodes_postgres_data.id}"),
])
def test_postgres_data_lives_on_its_volume(docs: dict[str, Any], stack: str, node: str,
                                           device: str) -> None:
    """The data volume was created and attached but never mounted: the data directory was
    on the disposable root disk."""
    postgres = boot_of(docs[stack], node)["postgres"]
    assert postgres["volume_device"] == device
    assert postgres["data_label"] == "edgekit-pgdata"
    config = _node_modules(stack, node)["config"]
    mount = config["fileSystems"]["/var/lib/postgresql"]
    assert mount["device"] == "/dev/disk/by-label/edgekit-pgdata"
    units = config["systemd"]["services"]
    # ours (the volume) and upstream's (the data directory): list and string both kept
    assert units["postgresql"]["unitConfig"]["RequiresMountsFor"] == [
        "/var/lib/postgresql/17", "/var/lib/postgresql"]
    volume = units["edgekit-pg-volume"]
    assert volume["before"] == ["var-lib-postgresql.mount"]
    assert "mkfs.ext4 -q -L edgekit-pgdata" in volume["script"]
    assert 'if [ -z "$type" ]; then' in volume["script"]
    assert "e2label \"$device\" edgekit-pgdata" in volume["script"]  # hetzner's ext4
    snapshots = {t for t in docs[stack]["resource"] if t.endswith("_snapshot")}
    assert snapshots == set()  # backups are continuous (pgBackRest, issue 13)



def test_vultr_volume_is_the_one_virtio_disk_that_is_not_the_root_disk(tmp_path: Path) -> None:
    """Vultr's boot document named /dev/vdb, which no Vultr document promises; the stable
    name, /dev/disk/by-id/virtio-<mount_id>, exists only after the instance (whose user data
    is fixed at creation). The node's unit now resolves the pattern on real block devices
    (loop devices this test attaches, linked as /dev/disk/by-id would link them): the root
    disk and partitions are skipped, the one other disk is formatted, two are an error."""
    script = _node_modules("prod", "pg-tokyo")["config"]["systemd"][
        "services"]["edgekit-pg-volume"]["script"]
    devices = []
    try:
        for name in ("root", "volume", "stray"):
            image = tmp_path / f"{name}.img"
            image.write_bytes(b"")
            os.truncate(image, 32 * 1024 * 1024)
            devices.append(subprocess.run(["losetup", "--find", "--show", str(image)],
                                          check=True, capture_output=True,
                                          text=True).stdout.strip())
        root, volume, stray = devices
        by_id = tmp_path / "by-id"
        by_id.mkdir()
        for link, target in (("virtio-rootserial", root), ("virtio-rootserial-part1", root),
                             ("virtio-mountid", volume)):
            (by_id / link).symlink_to(target)
        # The one stand-in: findmnt names the root loop device as the disk "/" is on (this
        # test's own root filesystem is not one it may offer to mkfs).
        shim = tmp_path / "bin"
        shim.mkdir()
        (shim / "findmnt").write_text(f"#!/bin/sh\necho {root}\n")
        (shim / "findmnt").chmod(0o755)
        pattern = f"{by_id}/virtio-*"
        labels = "; ".join(f"blkid -o value -s LABEL {d} || echo none" for d in devices)
        assert run_volume_script(tmp_path, script, pattern, labels,
                                 first_on_path=shim).split() == [
            "none", "edgekit-pgdata", "none"]
        # a second virtio disk besides the root disk: nothing is formatted, the error says why
        subprocess.run(["wipefs", "-a", volume], check=True, capture_output=True)
        (by_id / "virtio-other").symlink_to(stray)
        error = run_volume_script(tmp_path, script, pattern, labels, first_on_path=shim,
                                  fails=True)
        assert f"2 disks match {pattern} besides the root disk ({Path(root).name})" in error
        assert "must be the only one attached" in error
        for device in devices:
            assert subprocess.run(["blkid", device], capture_output=True).returncode != 0
    finally:
        for device in devices:
            subprocess.run(["losetup", "--detach", device], check=True)

# -- cloudflared ---------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_one_cloudflared_per_tunnel_token_and_none_without(docs: dict[str, Any],
                                                           stack: str) -> None:
    """cloudflared ran on the Postgres node with no token and nobody ran the Postgres
    tunnel: the node's units now follow the tokens its boot document carries."""
    composed = compose_estate(Estate.load(ROOT, stack, check_fresh=False))
    for node, entry in composed.items():
        secrets = boot_of(docs[stack], node)["secrets"]
        tokens = sorted(k for k in secrets if k.endswith("tunnel_token"))
        assert sorted(entry["tunnels"]) == tokens, node
        units = _node_modules(stack, node)["config"]["systemd"]["services"]
        cloudflared = sorted(u for u in units if u.startswith("edgekit-cloudflared-"))
        assert cloudflared == sorted(f"edgekit-cloudflared-{t.replace('_', '-')}"
                                     for t in tokens), node
        for token in tokens:
            unit = units[f"edgekit-cloudflared-{token.replace('_', '-')}"]
            assert unit["serviceConfig"]["LoadCredential"] == [
                f"token:/run/keys/edgekit/{token}"]
    assert composed["pg-tokyo" if stack == "prod" else "staging-1"]["tunnels"][-1] == \
        "pg_tunnel_token"


# -- Vector -------------------------------------------------------------------------------

def test_vector_gets_its_r2_keys_from_its_unit() -> None:
    """No unit read the R2 keys written to /run/keys: Vector could not authenticate."""
    config = _node_modules("prod", "edge-1")["config"]
    unit = config["systemd"]["services"]["vector"]
    assert unit["serviceConfig"]["EnvironmentFile"] == ["-/run/keys/edgekit/vector.env"]
    assert unit["requires"] == ["network-online.target", "edgekit-keys.service"]  # upstream's, ours
    keys = config["systemd"]["services"]["edgekit-keys"]["script"]
    assert "AWS_ACCESS_KEY_ID=%s" in keys and "AWS_SECRET_ACCESS_KEY=%s" in keys


@pytest.mark.parametrize(("reported", "starts"), [
    (f"vector {VECTOR_VERSION} (x86_64-unknown-linux-gnu 1a2b3c4 2025-02-24)", True),
    ("vector 0.51.1 (x86_64-unknown-linux-gnu 5d6e7f8 2025-11-04)", False),
])
def test_vector_runs_only_the_pinned_version(tmp_path: Path, reported: str,
                                             starts: bool) -> None:
    """The pinned version was only a label; nixpkgs' Vector is newer and R2 refuses its
    checksum headers. The unit's ExecStartPre refuses any other version."""
    config = _node_modules("prod", "edge-1")["config"]
    check = config["environment"]["etc"]["edgekit-vector-version-check"]
    assert config["systemd"]["services"]["vector"]["serviceConfig"]["ExecStartPre"] == [
        "/etc/edgekit-vector-version-check"]
    package = tmp_path / "vector"
    (package / "bin").mkdir(parents=True)
    (package / "bin/vector").write_text(f"#!/bin/sh\necho '{reported}'\n")
    (package / "bin/vector").chmod(0o755)
    script = check["text"].replace(config["services"]["vector"]["package"], str(package))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert (done.returncode == 0) is starts
    if not starts:
        assert f"vector 0.51.1 is installed, {VECTOR_VERSION} is pinned" in done.stderr


def test_node_nix_pins_the_version_edgekit_pins() -> None:
    text = (ROOT / "nix/node.nix").read_text()
    assert f'vectorVersion ? "{VECTOR_VERSION}"' in text


# -- what a process on the node can read (ADR 0008) ---------------------------------------

USERS = {"root": 0, "postgres": 71, "svc": 61234}


def run_keys_script(tmp_path: Path, script: str, secrets: dict[str, str],
                    probe: str) -> str:
    """Run the generated edgekit-keys script in a private mount namespace with a boot.json
    holding `secrets`, then `probe` (a shell snippet); returns its output."""
    boot = tmp_path / "boot.json"
    boot.write_text(json.dumps({"secrets": secrets}))
    passwd = "".join(f"{u}:x:{i}:{i}::/:/bin/sh\n" for u, i in USERS.items())
    group = "".join(f"{u}:x:{i}:\n" for u, i in USERS.items())
    wrapper = textwrap.dedent(f"""\
        set -e
        mount -t tmpfs edgekit-etc /etc && mount -t tmpfs edgekit-run /run
        printf '%s' {shlex.quote(passwd)} > /etc/passwd
        printf '%s' {shlex.quote(group)} > /etc/group
        mkdir -p /etc/edgekit && cp {boot} /etc/edgekit/boot.json
        chmod 0600 /etc/edgekit/boot.json
        sh -e -c {shlex.quote(script)}
        {probe}
        """)
    done = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", wrapper],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def can_read(user: str, path: str) -> str:
    uid = USERS[user]
    return (f"if setpriv --reuid={uid} --regid={uid} --clear-groups cat {path} >/dev/null "
            f"2>&1; then echo '{user} reads {path}'; else echo '{user} denied {path}'; fi")


def test_no_service_process_can_read_another_services_secret(tmp_path: Path) -> None:
    config = _node_modules("staging", "staging-1")["config"]
    script = config["systemd"]["services"]["edgekit-keys"]["script"]
    secrets = {"tunnel_token": "T", "pg_tunnel_token": "P", "log_sink_access_key_id": "K",
               "log_sink_secret_access_key": "S", "pg_password_svc_api_rw": "A",
               "pg_password_svc_web_ro": "W", "pgbackrest_cipher_pass": "C"}
    files = ["/etc/edgekit/boot.json", "/run/keys/edgekit/tunnel_token",
             "/run/keys/edgekit/pg_tunnel_token", "/run/keys/edgekit/vector.env",
             "/run/keys/edgekit/log_sink_secret_access_key",
             "/run/keys/edgekit-pg/svc_api_rw", "/run/keys/edgekit-pg/svc_web_ro",
             "/run/keys/edgekit/pgbackrest_cipher_pass"]
    probes = "\n".join(can_read(user, f) for user in ("svc", "postgres", "root") for f in files)
    out = run_keys_script(tmp_path, script, secrets, probes
                          + "\ncat /run/keys/edgekit/vector.env"
                          + "\nstat -c '%n %a %U:%G' /run/keys/edgekit /run/keys/edgekit-pg "
                          "/run/keys/edgekit/* /run/keys/edgekit-pg/*")
    lines = set(out.splitlines())
    for f in files:
        assert f"svc denied {f}" in lines  # any DynamicUser service: nothing at all
        assert f"root reads {f}" in lines
    for f in files:  # postgres: only the passwords it sets and pgBackRest's keys
        expected = "reads" if f.startswith("/run/keys/edgekit-pg/") or "pgbackrest" in f \
            else "denied"
        assert f"postgres {expected} {f}" in lines
    assert "AWS_ACCESS_KEY_ID=K" in lines and "AWS_SECRET_ACCESS_KEY=S" in lines
    assert "/run/keys/edgekit 711 root:root" in lines
    assert "/run/keys/edgekit/pgbackrest_cipher_pass 440 root:postgres" in lines
    assert "/run/keys/edgekit/tunnel_token 400 root:root" in lines
    assert "/run/keys/edgekit-pg/svc_api_rw 440 root:postgres" in lines
    # services get their own secret through systemd only: no unit names another's file
    units = config["systemd"]["services"]
    for name, unit in units.items():
        loaded = [c.split(":", 1)[1] for c in unit.get("serviceConfig", {})
                  .get("LoadCredential", [])]
        if name.startswith("edgekit-cloudflared-"):
            assert loaded == [f"/run/keys/edgekit/{name[20:].replace('-', '_')}"]
    assert os.geteuid() == 0 and stat.S_ISDIR(os.stat("/run").st_mode)


@pytest.mark.parametrize(("env", "node"), [("prod", "edge-1"), ("prod", "edge-tokyo"),
                                         ("prod", "pg-tokyo")])
def test_metadata_service_answers_root_only(tmp_path: Path, env: str, node: str) -> None:
    """The metadata service serves user data (secrets included) to any local process, on
    every address the cloud serves it: Linode (edge-tokyo) on IPv6 too. The node's generated
    firewall rules, applied with the real iptables and ip6tables in a network namespace this
    test creates, with a stand-in metadata server on each address inside it."""
    rule = _node_modules(env, node)["config"]["networking"]["firewall"]
    provider = Estate.load(ROOT, env, check_fresh=False).env.nodes[node].provider
    facts = json.loads((ROOT / "nix" / "clouds.json").read_text())[provider]["metadata"]
    addresses = facts["ipv4"] + [a for a in facts["ipv6"] if not a.startswith("fe80:")]
    assert addresses[0] == "169.254.169.254"
    for line in rule["extraCommands"].splitlines():
        assert f"{line.replace(' -I ', ' -D ')} || true" in rule["extraStopCommands"]
    for address in facts["ipv4"] + facts["ipv6"]:  # link-local ones too (not served here)
        assert f"-d {address}/" in rule["extraCommands"], address
    namespace = f"edgekit-md-{os.getpid()}-{node}"
    servers = "\n".join(
        f"ip addr add {a}/{128 if ':' in a else 32} dev lo nodad 2>/dev/null || "
        f"ip addr add {a}/32 dev lo\n"
        f"{shlex.quote(sys.executable)} -m http.server --bind {a} 80 >/dev/null 2>&1 & "
        "pids=\"$pids $!\"" for a in addresses)
    url = {a: f"http://[{a}]/" if ":" in a else f"http://{a}/" for a in addresses}
    nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups "

    def ask(who: str, prefix: str) -> str:
        return "\n".join(f'echo "{who} {a} $({prefix}curl -s -m 2 -o /dev/null '
                         f'-w \'%{{http_code}}\' {url[a]})"' for a in addresses)

    probes = ask("before", nobody)
    after = ask("root", "") + "\n" + ask("nobody", nobody)
    waits = "\n".join(f"for _ in $(seq 1 50); do curl -s -m 1 -o /dev/null {url[a]} && break; "
                      "sleep 0.1; done" for a in addresses)
    script = (f"ip link set lo up\npids=\n{servers}\ntrap 'kill $pids' EXIT\n{waits}\n"
              f"{probes}\n{rule['extraCommands']}\n{after}\n")
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        done = subprocess.run(["ip", "netns", "exec", namespace, "sh", "-c", script],
                              capture_output=True, text=True, timeout=120)
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=True)
    lines = done.stdout.splitlines()
    for address in addresses:
        # the stand-in answers anyone until the rules are in, then root only
        assert f"before {address} 200" in lines, done.stdout + done.stderr
        assert f"root {address} 200" in lines, done.stdout + done.stderr
        assert f"nobody {address} 000" in lines, done.stdout + done.stderr
    if provider == "linode":
        assert "fd00:a9fe:a9fe::1" in addresses


def run_volume_script(tmp_path: Path, script: str, device: str, after: str, *,
                      first_on_path: Path | None = None, fails: bool = False) -> str:
    boot = tmp_path / "boot.json"
    boot.write_text(json.dumps({"postgres": {"volume_device": device}}))
    path = f"{first_on_path}:$PATH" if first_on_path else "$PATH"
    wrapper = textwrap.dedent(f"""\
        set -e
        export PATH="{path}:/usr/sbin:/sbin"
        mount -t tmpfs edgekit-etc /etc
        mkdir -p /etc/edgekit && cp {boot} /etc/edgekit/boot.json
        sh -e -c {shlex.quote(script)}
        {after}
        """)
    done = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", wrapper],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode != 0) == fails, done.stderr
    return done.stderr if fails else done.stdout


def test_postgres_volume_is_formatted_once_and_never_again(tmp_path: Path) -> None:
    """The generated format-once unit on a real block device (a loop device this test
    attaches): a blank volume gets ext4 with the label the mount uses; a second boot keeps
    the data; Hetzner's pre-formatted, unlabelled ext4 volume is labelled, not wiped."""
    script = _node_modules("staging", "staging-1")["config"]["systemd"][
        "services"]["edgekit-pg-volume"]["script"]
    image = tmp_path / "volume.img"
    image.write_bytes(b"")
    os.truncate(image, 32 * 1024 * 1024)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                            capture_output=True, text=True).stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    write = (f"mount /dev/disk/by-label/edgekit-pgdata {mnt} 2>/dev/null || mount {device} "
             f"{mnt}; echo kept > {mnt}/PG_VERSION; umount {mnt}")
    read = f"blkid -o value -s LABEL {device}; mount {device} {mnt}; cat {mnt}/PG_VERSION; " \
           f"umount {mnt}"
    try:
        assert run_volume_script(tmp_path, script, device, write) == ""
        assert run_volume_script(tmp_path, script, device, read).split() == [
            "edgekit-pgdata", "kept"]
        # Hetzner: the volume arrives as ext4 without a label, perhaps already used.
        subprocess.run(["e2label", device, ""], check=True)
        assert run_volume_script(tmp_path, script, device, read).split() == [
            "edgekit-pgdata", "kept"]
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)
