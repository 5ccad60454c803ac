"""Nothing outside the output (ADR 0027): synth replaces only a folder it owns — a new or
empty one, or one holding its marker (or nothing but a synth's layout) — and refuses any
other with a clear message, deleting and chmod'ing nothing; the stacks another app wrote
into the same output are kept."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from edgekit import App, LocalState, OutputError, Resource, Stack
from edgekit.core.files import OUTPUT_MARKER
from tests.conftest import RunCli, tree_of

GIT = ("git", "-c", "user.name=edgekit-test", "-c", "user.email=test@edgekit.invalid",
       "-c", "commit.gpgsign=false")


def _app(outdir: Path, *names: str) -> App:
    app = App(outdir=outdir, check_schemas=False)
    for name in names:
        stack = Stack(app, name, state=LocalState(), encryption=None)
        Resource(stack, "marker", type="terraform_data", config={"input": name})
    return app


def _committed(root: Path) -> None:
    subprocess.run([*GIT, "init", "-q"], cwd=root, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", "project"], cwd=root, check=True)


def _porcelain(root: Path) -> str:
    """Every untracked, ignored or changed path, but Python's own bytecode of the imported
    stacks (written whenever PYTHONDONTWRITEBYTECODE is unset; not edgekit's writing)."""
    lines = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=root,
                           check=True, capture_output=True, text=True).stdout.splitlines()
    return "".join(f"{line}\n" for line in lines if not line.endswith("__pycache__/"))


def test_synth_out_dot_refuses_and_deletes_nothing(project_copy: Path, cli: RunCli) -> None:
    """`edgekit synth --out .` deleted the whole project, .git included, and exited 0."""
    _committed(project_copy)
    before = tree_of(project_copy)
    done = cli("synth", "--out", ".")
    assert done.returncode == 1, done.stderr
    assert f"refusing to write the output into {project_copy}" in done.stderr
    assert f"no {OUTPUT_MARKER} marker" in done.stderr and "Nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr
    assert tree_of(project_copy) == before
    assert _porcelain(project_copy) == ""


def test_out_dir_with_unrelated_files_is_refused_untouched_and_its_mode_kept(
        tmp_path: Path, project_copy: Path, cli: RunCli) -> None:
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    (mine / "todo.txt").write_text("keep me\n")
    (mine / "notes" / "a.md").write_text("# a\n")
    mine.chmod(0o751)
    before = tree_of(mine)
    done = cli("synth", "--out", str(mine))
    assert done.returncode == 1, done.stderr
    assert f"refusing to write the output into {mine}" in done.stderr
    assert "(notes, todo.txt)" in done.stderr
    assert tree_of(mine) == before
    assert stat.S_IMODE(mine.stat().st_mode) == 0o751
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "project"]  # no staging left


def test_cdktf_outdir_naming_tracked_docs_is_refused(project_copy: Path, cli: RunCli) -> None:
    docs = project_copy / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# the guide\n")
    _committed(project_copy)
    done = cli("synth", env={"CDKTF_OUTDIR": "docs"})
    assert done.returncode == 1, done.stderr
    assert "refusing to write the output into" in done.stderr and "guide.md" in done.stderr
    assert (docs / "guide.md").read_text() == "# the guide\n"
    assert _porcelain(project_copy) == ""


def test_app_synth_refuses_a_folder_it_does_not_own(tmp_path: Path) -> None:
    """The library path (`python my_app.py` ending in app.synth()) is guarded the same."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "data.csv").write_text("1,2\n")
    with pytest.raises(OutputError, match="refusing to write the output into"):
        _app(tmp_path / "out", "a").synth()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["data.csv"]


def test_an_empty_folder_is_taken_with_its_mode_and_then_owned(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o750)
    _app(out, "a").synth()
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert (out / OUTPUT_MARKER).is_file()
    assert (out / "stacks/a/cdk.tf.json").is_file()
    (out / "stacks/a/.terraform").mkdir()  # what plain `tofu init` in a stack folder adds
    _app(out, "a").synth()  # owned now: replaced again
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


def test_a_new_folder_gets_the_umask_mode_not_0700(tmp_path: Path) -> None:
    """The staging folder was a mkdtemp (0700) that became the output folder."""
    previous = os.umask(0o022)
    try:
        _app(tmp_path / "out", "a").synth()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_output_written_before_the_marker_existed_is_still_ours(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _app(out, "a").synth()
    (out / OUTPUT_MARKER).unlink()  # what an older edgekit (or cdktf synth) left
    _app(out, "a").synth()
    assert (out / OUTPUT_MARKER).is_file()


def test_synth_of_another_app_keeps_the_stacks_it_does_not_define(tmp_path: Path) -> None:
    """`edgekit synth --app X` deleted the output of every stack X does not define."""
    out = tmp_path / "out"
    _app(out, "net", "web").synth()
    web_before = tree_of(out / "stacks/web")
    report = _app(out, "tools").synth()
    assert report.foreign == ("net", "web")
    manifest = json.loads((out / "manifest.json").read_text())["stacks"]
    assert sorted(manifest) == ["net", "tools", "web"]
    assert tree_of(out / "stacks/web") == web_before
    # the first app again: its stacks replaced, the other app's kept
    again = _app(out, "net", "web").synth()
    assert again.foreign == ("tools",)
    assert sorted(json.loads((out / "manifest.json").read_text())["stacks"]) == \
        ["net", "tools", "web"]
    # a kept stack whose folder the user removed is dropped from the manifest
    import shutil

    shutil.rmtree(out / "stacks/tools")
    assert _app(out, "net", "web").synth().foreign == ()
    assert sorted(json.loads((out / "manifest.json").read_text())["stacks"]) == ["net", "web"]


def test_local_state_inside_the_output_is_refused_at_synth(tmp_path: Path) -> None:
    """LocalState kept terraform.tfstate in the stack folder, which the next synth replaced."""
    from edgekit import SynthError

    app = App(outdir=tmp_path / "out", check_schemas=False)
    Stack(app, "inside", state=LocalState(path="terraform.tfstate"), encryption=None)
    Stack(app, "deep", state=LocalState(path="../../x.tfstate"), encryption=None)
    Stack(app, "absolute", state=LocalState(path=str(tmp_path / "out/s.tfstate")),
          encryption=None)
    Stack(app, "fine", state=LocalState(path="../../../state/fine.tfstate"), encryption=None)
    Stack(app, "default", state=LocalState(), encryption=None)
    with pytest.raises(SynthError) as err:
        app.synth()
    text = str(err.value)
    for name in ("inside", "deep", "absolute"):
        assert f"[{name}] LocalState(path=" in text
    assert "[fine]" not in text and "[default]" not in text
    assert "which every synth replaces: the state would be lost" in text


def test_the_suites_checkout_guard_sees_a_rewrite_and_a_new_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session fixture `checkout_unchanged` can fail: same bytes rewritten (a newer
    mtime) and an untracked file both change what it compares."""
    from tests import conftest

    (tmp_path / "tracked.txt").write_text("v1\n")
    _committed(tmp_path)
    monkeypatch.setattr(conftest, "ROOT", tmp_path)
    before = conftest._checkout_state()
    assert before is not None and before == conftest._checkout_state()
    os.utime(tmp_path / "tracked.txt", ns=(1, 1))  # rewritten with the same bytes
    rewritten = conftest._checkout_state()
    assert rewritten is not None and rewritten[1] != before[1]
    (tmp_path / "stray.json").write_text("{}")
    stray = conftest._checkout_state()
    assert stray is not None and "stray.json" in stray[0]


def test_a_broken_previous_manifest_stops_the_synth_and_keeps_everything(
        tmp_path: Path) -> None:
    """Its stacks cannot be told apart, so nothing is guessed away."""
    out = tmp_path / "out"
    _app(out, "net").synth()
    (out / "manifest.json").write_text('{"stacks": {"../x": {}}}')
    before = tree_of(out)
    with pytest.raises(OutputError) as err:
        _app(out, "web").synth()
    assert "invalid stack name '../x'" in str(err.value)
    assert f"fix the manifest or delete {out}" in str(err.value)
    assert tree_of(out) == before


@pytest.mark.parametrize("path", [None, "../../../out/s.tfstate"])
def test_local_state_that_climbs_back_into_the_output_is_refused(
        tmp_path: Path, path: str | None) -> None:
    """With an output folder named `.edgekit`, the default state (`<out>/../.edgekit/state`)
    was inside it, and the next synth deleted it; so was a path that climbs out of the
    output and back in by its name."""
    from edgekit import SynthError

    out = tmp_path / (".edgekit" if path is None else "out")
    app = App(outdir=out, check_schemas=False)
    Stack(app, "local", state=LocalState(path=path), encryption=None)
    with pytest.raises(SynthError) as err:
        app.synth()
    text = str(err.value)
    assert f"[local] LocalState(path={path!r}) puts the state inside the output folder {out}" \
        in text
    if path is None:
        assert "Write the output elsewhere (--out, CDKTF_OUTDIR: not a folder named " \
            ".edgekit) or give LocalState a path outside it" in text
    assert not out.exists()
