"""Unit tests of edgekit/ops: plan summaries, drift, Markdown, colour, env files, import
calls, the estate picture (kept current in docs/structure/index.md) and the help texts.

The same commands run against the real tofu in tests/test_ops.py."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from edgekit.cli import build_parser, main
from edgekit.ops import graph
from edgekit.ops.importer import generated_names, python_call
from edgekit.ops.progress import console
from edgekit.ops.secrets import read_env_file
from edgekit.ops.summary import exit_code, from_plan, markdown, text_lines
from edgekit.ops.tofu import OpsError, Workspace

ROOT = Path(__file__).resolve().parent.parent

PLAN = {
    "resource_changes": [
        {"address": "random_id.a", "change": {"actions": ["create"]}},
        {"address": "random_id.b", "change": {"actions": ["update"]}},
        {"address": "hcloud_server.z", "change": {"actions": ["delete", "create"]}},
        {"address": "hcloud_server.c", "change": {"actions": ["create", "delete"]}},
        {"address": "random_id.gone", "change": {"actions": ["delete"]}},
        {"address": "random_id.same", "change": {"actions": ["no-op"]}},
        {"address": "random_id.imp", "change": {"actions": ["no-op"], "importing": {"id": "x"}}},
    ],
    "output_changes": {"ip": {"actions": ["update"]}, "same": {"actions": ["no-op"]}},
}


def test_plan_summary_counts_and_lists_every_replace_and_destroy() -> None:
    s = from_plan("prod", PLAN)
    assert (s.add, s.change, s.replace, s.destroy, s.imports) == (1, 1, 2, 1, 1)
    assert s.replaced == ["hcloud_server.c", "hcloud_server.z"]
    assert s.destroyed == ["random_id.gone"]
    assert s.outputs_changed == ["ip"]
    assert s.status == "changes" and s.risky
    lines = [line for _, line in text_lines(s)]
    assert lines[0] == "prod: 1 to add, 1 to change, 2 to replace, 1 to destroy, 1 to import"
    assert "  -/+ hcloud_server.c (replace)" in lines
    assert "  -   random_id.gone (destroy)" in lines
    assert exit_code([s]) == 2
    empty = from_plan("dev", {"resource_changes": [
        {"address": "a.b", "change": {"actions": ["no-op"]}}]})
    assert empty.status == "no-changes" and exit_code([empty]) == 0
    assert exit_code([empty, s.__class__("x", status="error", error="boom")]) == 1


def test_drift_lists_what_changed_outside() -> None:
    s = from_plan("prod", {"resource_drift": [
        {"address": "cloudflare_ruleset.waf", "change": {"actions": ["update"]}},
        {"address": "hcloud_server.a", "change": {"actions": ["delete"]}},
    ]})
    assert s.drifted == [{"address": "cloudflare_ruleset.waf", "drift": "changed"},
                         {"address": "hcloud_server.a", "drift": "deleted"}]
    lines = [line for _, line in text_lines(s, "drift")]
    assert lines == ["prod: 2 changed outside OpenTofu",
                     "  ~ cloudflare_ruleset.waf (changed)", "  ~ hcloud_server.a (deleted)"]
    s.status = "drift"
    assert exit_code([s]) == 2
    assert "| `prod` | `hcloud_server.a` | drift (deleted) |" in markdown([s], "drift")


def test_markdown_for_a_pull_request() -> None:
    s = from_plan("prod", PLAN)
    text = markdown([s])
    assert text.startswith("### edgekit plan\n")
    assert "| `prod` | **replace/destroy** | 1 | 1 | 2 | 1 |" in text
    assert "| `prod` | `random_id.gone` | destroy |" in text


def test_colour_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for stream, coloured in ((Tty(), True), (io.StringIO(), False)):
        console(stream).print(Text("x: 1 to replace", style="bold red"))
        assert ("\x1b[" in stream.getvalue()) is coloured
    monkeypatch.setenv("NO_COLOR", "1")
    stream = Tty()
    console(stream).print(Text("x", style="bold red"))
    assert "\x1b[31" not in stream.getvalue()


def test_progress_shows_steps_with_elapsed_time_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgekit.ops.progress import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stream = Tty()
    progress = Progress(stream)
    with progress.step("net", "plan"):
        pass
    assert re.search(r"net: plan \(\d+\.\ds\)", stream.getvalue())
    quiet = io.StringIO()
    with Progress(quiet).step("net", "plan"):
        pass
    assert quiet.getvalue() == ""
    monkeypatch.setenv("CI", "true")
    ci = Tty()
    with Progress(ci).step("net", "plan"):
        pass
    assert ci.getvalue() == ""


def test_env_file_parsing_never_shows_values(tmp_path: Path) -> None:
    path = tmp_path / "e.env"
    path.write_text("# c\n\nexport A='x y'\nB=\"q\"  # note\nC=plain\n")
    assert read_env_file(path) == {"A": "x y", "B": "q", "C": "plain"}
    path.write_text("A=ok\nthis is not=valid-secret-value\n")
    with pytest.raises(OpsError) as err:
        read_env_file(path)
    assert ":2: expected KEY=value" in str(err.value)
    assert "valid-secret-value" not in str(err.value)


def test_import_call_is_python_and_hides_sensitive_values() -> None:
    hcl = ('resource "random_id" "x" {\n  byte_length = 4\n  keepers     = null\n'
           '  nested {\n    inner = 1\n  }\n}\n')
    assert generated_names(hcl) == ["byte_length", "keepers", "nested"]
    from edgekit.ops.importer import Secret

    text = python_call("x", "random_id", {"byte_length": 4, "token": Secret("token"),
                                          "tags": {"b": True, "a": None}}, "ID")
    assert text == (
        "Resource(self, 'x', type='random_id', config={\n"
        "    'byte_length': 4,\n"
        "    'tags': {'a': None, 'b': True},\n"
        "    'token': Variable(self, 'token', type='string', sensitive=True).ref(),\n"
        "}, import_id='ID')")


def test_graph_is_deterministic_and_follows_cross_stack_reads() -> None:
    docs: dict[str, dict[str, Any]] = {
        "net": {"resource": {"hcloud_server": {"a": {"name": "a"}},
                             "random_id": {"r": {"keepers": {"s": "${hcloud_server.a.id}"}}}},
                "output": {"xref_hcloud_server_a_ipv4_address": {
                    "value": "${hcloud_server.a.ipv4_address}"}}},
        "web": {"resource": {"cloudflare_workers_script": {"w": {
                    "content": "${data.terraform_remote_state.net.outputs."
                               "xref_hcloud_server_a_ipv4_address}"}},
                             "cloudflare_r2_bucket": {"logs": {"name": "x"}}},
                "data": {"terraform_remote_state": {"net": {"backend": "s3"}}}},
    }
    text = graph.mermaid(docs)
    assert text == graph.mermaid(dict(reversed(docs.items())))
    assert 'n_net_hcloud_server_a["node: a"]' in text
    assert "random_id" not in text  # not part of the estate's shape
    assert "n_web_cloudflare_workers_script_w --> n_net_hcloud_server_a" in text
    assert "n_web_cloudflare_r2_bucket_logs -->" not in text
    placed = graph.mermaid(docs, {"net": {"a": ["api", "web"]}})
    assert 'n_net_service_api["service: api"]' in placed
    assert "n_net_hcloud_server_a --> n_net_service_web" in placed
    dot = graph.dot(docs)
    assert 'subgraph "cluster_net"' in dot
    assert "n_web_cloudflare_workers_script_w -> n_net_hcloud_server_a;" in dot
    svg = graph.render_image(dot, "svg")
    assert svg.startswith(b"<?xml") and b"node: a" in svg


def test_docs_structure_embeds_the_current_picture(tmp_path: Path) -> None:
    """`edgekit graph --format mermaid` regenerates the block in docs/structure/index.md."""
    from stacks import make_app

    out = tmp_path / "cdktf.out"
    make_app(outdir=out).synth()
    workspace = Workspace(tmp_path, out)
    names = sorted(p.name for p in (out / "stacks").iterdir())
    picture = graph.mermaid({n: workspace.document(n) for n in names}, graph.placements_of(
        {n: workspace.stack_dir(n) for n in names}))
    page = (ROOT / "docs/structure/index.md").read_text()
    match = re.search(r"<!-- edgekit graph -->\n```mermaid\n(.*?)```\n", page, re.DOTALL)
    assert match, "docs/structure/index.md lost its <!-- edgekit graph --> block"
    assert match.group(1) == picture, (
        "the picture is stale: run "
        "`edgekit graph --format mermaid --embed docs/structure/index.md`")


def test_help_texts_and_exit_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for command, words in (("plan", ["Exit 0 no changes, 2 changes, 1 error", "--json",
                                     "--markdown", "--env-file"]),
                           ("apply", ["--yes", "stop at the first failure"]),
                           ("drift", ["Exit 0 no drift, 2 drift, 1 error", "--json"]),
                           ("import", ["--stack", "--type", "--id", "import_id"]),
                           ("graph", ["--format", "mermaid"])):
        with pytest.raises(SystemExit) as done:
            parser.parse_args([command, "--help"])
        assert done.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        for word in words:
            assert word in text, (command, word)


def test_a_bad_command_line_is_1_for_plan_and_drift(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--no-such-flag"]) == 1
    assert main(["drift", "--json", "--markdown"]) == 1
    assert main(["graph", "--format", "gif"]) == 2  # elsewhere argparse's 2 stands
    assert main(["--app", "stacks", "plan", "--bogus"]) == 1
    assert main(["plan", "--help"]) == 0
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_unknown_stack_is_exit_1_not_2(project_cwd: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "nope", "--out", str(tmp_path / "out")])
    assert code == 1
    assert "no stack named nope" in capsys.readouterr().err


def test_apply_asks_on_a_terminal_and_only_yes_confirms(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgekit.ops.cli import _ask

    class Stdin(io.StringIO):
        def __init__(self, text: str, tty: bool) -> None:
            super().__init__(text)
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.setattr("sys.stdin", Stdin("yes\n", True))
    assert _ask("net: replace random_id.id") is True
    assert "net: replace random_id.id" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", Stdin("y\n", True))
    assert _ask("q") is False
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", Stdin("yes\n", False))  # no terminal: never asks
    assert _ask("q") is False
    assert capsys.readouterr().err == ""


def test_a_waiting_stack_is_shown_and_counts_as_changes() -> None:
    from edgekit.ops.summary import StackSummary

    s = StackSummary("app", status="waiting", waits_for=["net"])
    assert text_lines(s) == [("yellow", "app: waits for net (reads its state): planned again "
                                        "after `edgekit apply` applies net")]
    assert s.as_json()["waits_for"] == ["net"]
    assert exit_code([s]) == 2
    assert "| `app` | waits for net | 0 | 0 | 0 | 0 |" in markdown([s])
