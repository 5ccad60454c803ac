"""`edgekit check` and synth through the real command, in a copy of the project: exit
codes, formats (SARIF validated against the OASIS schema), suppressions, and the inputs
that must end in a message, never a traceback, with every file left as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from edgekit.check.engine import catalogue
from tests.conftest import ROOT, RunCli, tree_of

pytestmark = pytest.mark.tools  # cue, for the CUE cases

SARIF_SCHEMA = ROOT / ".venv" / "sarif-schema-2.1.0.json"
WORLD_OPEN = '''
from edgekit.constructs.firewall import Firewall


def open_firewall(stack, **kw):
    return Firewall(stack, "bastion", provider="hetzner", admin_ssh_cidrs=["0.0.0.0/0"], **kw)
'''


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def add_to_example(project: Path, line: str) -> None:
    path = project / "stacks/example.py"
    text = path.read_text() + WORLD_OPEN
    anchor = '        Output(self, "edge_1_ipv4"'
    assert anchor in text
    path.write_text(text.replace(anchor, f"        {line}\n{anchor}", 1))


def test_list_prints_the_catalogue_with_sources(cli: RunCli) -> None:
    result = cli("check", "--list")
    assert result.returncode == 0, result.stderr
    for entry in catalogue():
        assert f"{entry.id}  {entry.severity}" in result.stdout
        assert entry.source in result.stdout
    as_json = json.loads(cli("check", "--list", "--format", "json").stdout)
    assert [r["id"] for r in as_json] == [r.id for r in catalogue()]


def test_reference_estate_is_clean_with_no_suppressions(cli: RunCli) -> None:
    """Until issue 11 the reference estate suppressed EK132, EK133, EK161 and EK171."""
    result = cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout
    assert "suppressed:" not in result.stdout


SUPPRESSED = "open_firewall(self, allow_from_anywhere=True, reason='known: public git mirror')"


def test_json_names_rule_path_address_and_pointer(project_copy: Path, cli: RunCli) -> None:
    add_to_example(project_copy, SUPPRESSED)
    findings = json.loads(cli("check", "example", "--format", "json").stdout)["findings"]
    first = next(f for f in findings if f["rule"] == "EK101")
    assert first == {
        "rule": "EK101", "severity": "error", "stack": "example",
        "construct_path": "example/bastion/Resource", "address": "hcloud_firewall.bastion",
        "pointer": "$.rule[0].source_ips", "fix": first["fix"], "message": first["message"],
        "suppressed": "known: public git mirror"}


def test_sarif_is_valid_sarif_2_1_0(project_copy: Path, cli: RunCli) -> None:
    if not SARIF_SCHEMA.is_file():
        pytest.fail(f"{SARIF_SCHEMA} missing: `make test` fetches it (make {SARIF_SCHEMA})")
    add_to_example(project_copy, SUPPRESSED)
    result = cli("check", "--format", "sarif")
    assert result.returncode == 0, result.stderr
    log = json.loads(result.stdout)
    schema = json.loads(SARIF_SCHEMA.read_text())
    errors = sorted(Draft4Validator(schema).iter_errors(log), key=str)
    assert errors == [], errors[0].message if errors else ""
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.id for r in catalogue()]
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert suppressed and suppressed[0]["suppressions"][0]["justification"].startswith("known:")


def test_an_error_finding_exits_1_and_synth_writes_nothing(project_copy: Path,
                                                           cli: RunCli) -> None:
    add_to_example(project_copy, "open_firewall(self)")
    before = tree_of(project_copy)
    checked = cli("check", "example")
    assert checked.returncode == 1
    assert "error: EK101 [example/bastion/Resource] hcloud_firewall.bastion: inbound " \
        "traffic allowed from 0.0.0.0/0 (the whole internet) @ $.rule[0].source_ips" in \
        checked.stdout
    synth = cli("synth")
    assert synth.returncode == 1
    assert "EK101 inbound traffic allowed from 0.0.0.0/0" in synth.stderr
    no_traceback(synth)
    assert tree_of(project_copy) == before


def test_allow_from_anywhere_needs_a_reason_and_shows_it(project_copy: Path,
                                                         cli: RunCli) -> None:
    add_to_example(project_copy, "open_firewall(self, allow_from_anywhere=True)")
    result = cli("synth", "--out", str(project_copy / "out"))
    assert result.returncode == 1
    assert "[example/bastion] allow_from_anywhere=True needs a reason" in result.stderr
    no_traceback(result)


def test_allow_from_anywhere_with_a_reason_is_printed_by_synth_and_check(
        project_copy: Path, cli: RunCli) -> None:
    add_to_example(project_copy, "open_firewall(self, allow_from_anywhere=True, "
                   "reason='public git mirror on 22')")
    result = cli("synth", "--out", str(project_copy / "out"))
    assert result.returncode == 0, result.stderr
    assert "EK101 suppressed for 1 finding(s) (`edgekit check` lists them): public git " \
        "mirror on 22" in result.stderr
    assert "(reason: public git mirror on 22)" in cli("check", "example").stdout


def test_usage_errors_exit_2(cli: RunCli) -> None:
    assert cli("check", "--generated", "prod").returncode == 2
    assert cli("check", "--format", "xml").returncode == 2


def test_check_generated_still_works(cli: RunCli) -> None:
    result = cli("check", "--generated")
    assert result.returncode == 0, result.stderr
    assert "generated files are up to date" in result.stderr


# --- inputs that end in a message, not a traceback -----------------------------------------


def test_hand_edited_export_naming_an_unknown_node(project_copy: Path, cli: RunCli) -> None:
    path = project_copy / "cue/export/prod.json"
    data = json.loads(path.read_text())
    data["env"]["placement"]["edge-9"] = ["api"]
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    before = tree_of(project_copy)
    synth = cli("synth")
    assert synth.returncode == 1
    no_traceback(synth)
    assert "placement names node 'edge-9', which is not a node of environment 'prod'" in \
        synth.stderr
    assert "cue/export/prod.json" in synth.stderr and "$.env.placement.edge-9" in synth.stderr
    checked = cli("check")
    assert checked.returncode == 1 and "EK123" in checked.stdout
    assert tree_of(project_copy) == before


def test_hand_edited_cue_placement_with_an_unknown_service(project_copy: Path,
                                                           cli: RunCli) -> None:
    envs = project_copy / "cue/envs.cue"
    envs.write_text(envs.read_text().replace('"edge-1": ["api", "web"]',
                                             '"edge-1": ["api", "web", "apii"]', 1))
    before = tree_of(project_copy)
    result = cli("synth")
    assert result.returncode == 1
    no_traceback(result)
    assert "./envs.cue:41:28: environment 'prod': node 'edge-1' is given 'apii', which is " \
        "not a service that runs on nodes (expected one of: api, web) @ " \
        "placement.edge-1[2]" in result.stderr
    assert "empty disjunction" not in result.stderr
    assert tree_of(project_copy) == before


def test_admin_ssh_cidrs_as_a_string_is_one_clear_error(project_copy: Path,
                                                        cli: RunCli) -> None:
    add_to_example(project_copy, "Firewall(self, 'admin', provider='hetzner', "
                   "admin_ssh_cidrs='203.0.113.7/32')")
    result = cli("synth")
    assert result.returncode == 1
    no_traceback(result)
    assert "[example/admin] admin_ssh_cidrs must be a list of strings, got the string " \
        "'203.0.113.7/32'; write ['203.0.113.7/32']" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cidr_with_host_bits_is_a_clear_error(project_copy: Path, cli: RunCli) -> None:
    add_to_example(project_copy, "Firewall(self, 'admin', provider='vultr', "
                   "admin_ssh_cidrs=['203.0.113.7/24'])")
    result = cli("synth")
    assert result.returncode == 1
    no_traceback(result)
    assert "'203.0.113.7/24' has host bits set (the network is 203.0.113.0/24, one host is " \
        "203.0.113.7/32) @ $.admin_ssh_cidrs[0]" in result.stderr


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_cdktf_out_as_a_file_or_symlink_is_refused(project_copy: Path, cli: RunCli,
                                                  kind: str) -> None:
    out = project_copy / "cdktf.out"
    if kind == "file":
        out.write_text("mine")
    else:
        (project_copy / "real").mkdir()
        out.symlink_to(project_copy / "real")
    before = tree_of(project_copy)
    result = cli("synth")
    assert result.returncode == 1
    no_traceback(result)
    expected = "exists and is not a folder" if kind == "file" else "is a symlink"
    assert expected in result.stderr
    assert tree_of(project_copy) == before
    assert out.is_symlink() == (kind == "symlink")


def test_read_only_output_folder(project_copy: Path, cli: RunCli, tmp_path: Path) -> None:
    """A real read-only bind mount (in a private mount namespace the test creates)."""
    target = tmp_path / "ro"
    target.mkdir()
    out = target / "cdktf.out"
    script = (f"mount --bind -o ro {target} {target} && exec \"$0\" \"$@\"")
    result = cli("synth", "--out", str(out), prefix=("unshare", "-m", "sh", "-c", script))
    assert result.returncode == 1, result.stderr
    no_traceback(result)
    assert f"cannot write output folder {out}" in result.stderr
    assert "Read-only file system; the file system is mounted read-only; write elsewhere " \
        "(--out) or remount it writable" in result.stderr
    assert list(target.iterdir()) == []


def test_python_m_stacks_help_does_not_synthesize(project_copy: Path, cli: RunCli) -> None:
    before = tree_of(project_copy)
    result = cli("--help", module="stacks")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m stacks")
    bad = cli("--out", "x", module="stacks")
    assert bad.returncode == 2 and "takes no arguments" in bad.stderr
    assert tree_of(project_copy) == before


def test_outputs_import_of_nothing_changes_nothing(project_copy: Path, cli: RunCli) -> None:
    before = tree_of(project_copy)
    result = cli("outputs", "import", "--stack", "prod", stdin="{}")
    assert result.returncode == 0, result.stderr
    assert "nothing new to import for stack 'prod'" in result.stderr
    assert tree_of(project_copy) == before


def test_outputs_import_over_the_size_limit_is_refused(project_copy: Path,
                                                       cli: RunCli) -> None:
    before = tree_of(project_copy)
    big = '{"x": {"sensitive": false, "type": "string", "value": "' + "a" * (11 << 20) + '"}}'
    result = cli("outputs", "import", "--stack", "prod", stdin=big)
    assert result.returncode == 1
    no_traceback(result)
    assert "the input is over 10 MB" in result.stderr
    assert tree_of(project_copy) == before


# --- synth as one transaction --------------------------------------------------------------


def test_failed_synth_after_a_reexport_leaves_every_file(project_copy: Path,
                                                         cli: RunCli) -> None:
    """cue/ changed (so synth re-exports), then a stack fails: exports, generated files
    and cdktf.out all stay as they were."""
    assert cli("synth").returncode == 0
    services = project_copy / "cue/services.cue"
    services.write_text(services.read_text().replace("port: 8080", "port: 8090", 1))
    add_to_example(project_copy, "open_firewall(self)")
    before = tree_of(project_copy)
    result = cli("synth")
    assert result.returncode == 1 and "EK101" in result.stderr
    assert tree_of(project_copy) == before
    leftovers = [p.name for p in project_copy.rglob(".*") if p.name.startswith(".")
                 and (p.name.endswith((".new", ".tmp", ".bak")) or ".new-" in p.name)]
    assert leftovers == []


def test_building_the_app_never_writes(project_copy: Path, cli: RunCli) -> None:
    """What test collection does (import stacks, make_app()) re-exports nothing, even when
    cue/ changed: only a synth refreshes the exports, in its transaction."""
    services = project_copy / "cue/services.cue"
    services.write_text(services.read_text().replace("port: 8080", "port: 8090", 1))
    before = tree_of(project_copy)
    result = subprocess.run(
        [sys.executable, "-c", "from stacks import make_app; make_app()"],
        cwd=project_copy, capture_output=True, text=True, timeout=120,
        env={**os.environ, "EDGEKIT_SCHEMA_DIR": str(project_copy / "schema")})
    assert result.returncode == 0, result.stderr
    assert tree_of(project_copy) == before


def test_warnings_print_and_do_not_stop_synth(project_copy: Path, cli: RunCli) -> None:
    services = project_copy / "cue/services.cue"
    services.write_text(services.read_text().replace(
        'env: LOG_LEVEL:  "info"',
        'env: {LOG_LEVEL: "info", BUILD: "q8Z3vLx0Rk2P9mW7tY4bN6cJ1hF5sD8a"}', 1))
    result = cli("synth")
    assert result.returncode == 0, result.stderr
    assert "edgekit: warning: [prod] cue/services.cue: EK112 service 'web' env BUILD is a " \
        "plain value and its value is a random-looking string" in result.stderr
    assert "re-exported cue/export/prod.json" in result.stderr
    checked = cli("check")
    assert checked.returncode == 0
    assert "warning: EK112 [prod] cue/services.cue: service 'web' env BUILD" in checked.stdout
    assert "0 error(s), 1 warning(s)" in checked.stdout


def test_secret_in_cue_env_stops_synth(project_copy: Path, cli: RunCli) -> None:
    services = project_copy / "cue/services.cue"
    services.write_text(services.read_text().replace(
        'env: LOG_LEVEL:  "info"', 'env: {LOG_LEVEL: "info", DB_PASSWORD: "hunter2"}', 1))
    before = tree_of(project_copy)
    result = cli("synth")
    assert result.returncode == 1
    no_traceback(result)
    assert "EK111 [prod] cue/services.cue: service 'web' env DB_PASSWORD is a plain value and " \
        "its name says it is a secret" in result.stderr
    assert "move it to the service's `secrets` list" in result.stderr
    assert tree_of(project_copy) == before


def test_check_reads_cue_as_it_is_now_and_writes_nothing(project_copy: Path,
                                                         cli: RunCli) -> None:
    """cue/ changed since the last export: check judges the new values, in memory."""
    services = project_copy / "cue/services.cue"
    services.write_text(services.read_text().replace("port: 8081", "port: 4317", 1))
    before = tree_of(project_copy)
    result = cli("check")
    assert result.returncode == 1
    assert "EK121" in result.stdout and "port 4317" in result.stdout
    assert "OTLP/gRPC input (Vector)" in result.stdout
    assert tree_of(project_copy) == before


def test_check_reports_a_tree_that_cannot_be_built_as_a_finding(project_copy: Path,
                                                                 cli: RunCli) -> None:
    add_to_example(project_copy, "Firewall(self, 'admin', provider='hetzner', "
                   "admin_ssh_cidrs='203.0.113.7/32')")
    result = cli("check", "--format", "json")
    assert result.returncode == 1
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["rule"], finding["construct_path"]) == ("EK100", "example/admin")
    assert finding["message"].startswith("admin_ssh_cidrs must be a list of strings")
