"""`edgekit up`'s own parts: the deploy ref against a real `git daemon` (only what it wrote is
committed; a push is never forced), its exit codes, and what a Ctrl-C or a failing step
leaves in the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.constructs.pg_tls import CA_OUTPUT
from edgekit.cue.model import Estate
from edgekit.ops.progress import Progress
from edgekit.ops.tofu import OpsError, Tofu, Workspace
from edgekit.ops.up import steps as st
from edgekit.ops.up.deploy_ref import DeployRef, GitError
from edgekit.ops.up.runner import Hooks, Up, UpSettings
from tests.conftest import ROOT
from tests.gitserver import GitServer, git_in, git_server  # noqa: F401 (fixture)


@pytest.fixture
def repo(tmp_path: Path, git_server: GitServer,  # noqa: F811
         monkeypatch: pytest.MonkeyPatch) -> tuple[Path, GitServer]:
    for key, value in (("GIT_CONFIG_GLOBAL", "/dev/null"), ("GIT_CONFIG_NOSYSTEM", "1"),
                       ("GIT_AUTHOR_NAME", "op"), ("GIT_AUTHOR_EMAIL", "op@x.invalid"),
                       ("GIT_COMMITTER_NAME", "op"), ("GIT_COMMITTER_EMAIL", "op@x.invalid")):
        monkeypatch.setenv(key, value)
    url = git_server.create("estate")
    root = tmp_path / "project"
    (root / "cue" / "outputs").mkdir(parents=True)
    (root / "cue" / "outputs" / "prod.cue").write_text("old\n")
    (root / "stacks.py").write_text("v1\n")
    git_in(root, "init", "--quiet", "--initial-branch=main")
    git_in(root, "add", "-A")
    git_in(root, "commit", "--quiet", "-m", "estate")
    git_in(root, "remote", "add", "origin", url)
    return root, git_server


def test_only_the_files_up_writes_are_committed(repo: tuple[Path, GitServer]) -> None:
    root, server = repo
    ref = DeployRef(root, "origin", "deploy/prod")
    assert ref.remote_head() is None
    (root / "cue" / "outputs" / "prod.cue").write_text("imported\n")
    (root / "cue" / "outputs" / "prod.mesh.cue").write_text("keys\n")
    (root / "stacks.py").write_text("a change of the operator's own\n")
    commit = ref.commit([root / "cue" / "outputs", root / "nix" / "gone.json"], "prod: values")
    assert commit == ref.head()
    changed = git_in(root, "show", "--name-only", "--format=", "HEAD").stdout.split()
    assert changed == ["cue/outputs/prod.cue", "cue/outputs/prod.mesh.cue"]
    assert "stacks.py" in git_in(root, "status", "--porcelain").stdout  # left to its owner
    assert ref.commit([root / "cue" / "outputs"], "again") is None  # nothing new
    pushed, moved = ref.push()
    assert (pushed, moved) == (commit, True)
    assert server.ref("estate", "deploy/prod") == commit
    assert ref.push() == (commit, False)  # already there
    assert ref.push_command() == "git push origin HEAD:refs/heads/deploy/prod"


def test_a_push_is_never_forced(repo: tuple[Path, GitServer], tmp_path: Path) -> None:
    root, server = repo
    ref = DeployRef(root, "origin", "deploy/prod")
    ref.push()
    # someone else moves deploy/prod to a commit this checkout does not have
    other = tmp_path / "other"
    git_in(tmp_path, "clone", "--quiet", server.url("estate"), str(other))
    git_in(other, "checkout", "--quiet", "-b", "work", "origin/deploy/prod")
    (other / "theirs.txt").write_text("theirs\n")
    git_in(other, "add", "-A")
    git_in(other, "commit", "--quiet", "-m", "theirs")
    git_in(other, "push", "--quiet", "origin", "HEAD:refs/heads/deploy/prod")
    theirs = server.ref("estate", "deploy/prod")
    (root / "cue" / "outputs" / "prod.cue").write_text("ours\n")
    ref.commit([root / "cue" / "outputs"], "ours")
    with pytest.raises(GitError, match="never forces a push"):
        ref.push()
    assert server.ref("estate", "deploy/prod") == theirs


def test_not_a_repository_or_no_such_remote(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="is not a git repository"):
        DeployRef(tmp_path, "origin", "deploy/prod").check_repository()
    git_in(tmp_path, "init", "--quiet")
    with pytest.raises(GitError, match="no git remote 'origin'"):
        DeployRef(tmp_path, "origin", "deploy/prod").check_repository()


def test_exit_codes_tell_done_failed_at_step_and_timed_out_apart() -> None:
    def result(**kw: Any) -> st.UpResult:
        return st.UpResult("prod", [], **kw)

    assert result().exit_code == 0 and result().result == "done"
    assert result(dry_run=True).result == "dry-run"
    assert result(failed_step=5).exit_code == 15
    assert result(failed_step=10).exit_code == 20
    assert result(failed_step=11).exit_code == 21
    assert [name for name, _ in st.STEPS][9:] == ["pg-tls-ca", "hyperdrive"]
    assert result(timed_out=True).exit_code == 3
    assert result(interrupted=True, failed_step=9).exit_code == 130
    assert [name for name, _ in st.STEPS][8] == "wait-primary"


def never(*_: Any) -> Any:
    raise AssertionError("not reached")


def _up(tmp_path: Path, synth: Any, settings: UpSettings | None = None,
        estate: Estate | None = None, **hooks_: Any) -> Up:
    """`Up` over `tmp_path` as its project (a git checkout, for the steps that use git)."""
    hooks = Hooks(synth=synth, token_check=never, bucket_exists=never, primary_probe=never,
                  mesh_probe=never, import_outputs=never, import_mesh_keys=never,
                  load_estate=lambda: estate or Estate.load(ROOT, "prod", check_fresh=False),
                  stack_order=never,
                  clock=None,  # type: ignore[arg-type]
                  **{"ca_probe": never, "import_ca": never, "committed_paths": never,
                     **hooks_})
    tofu = Tofu(Workspace(tmp_path, tmp_path / "out"), {}, binary="tofu")
    return Up(tofu, settings or UpSettings(env="prod"), hooks, Progress())


def test_a_failing_step_stops_the_run_and_says_which(tmp_path: Path) -> None:
    def synth() -> None:
        raise OpsError("synth said no")

    result = _up(tmp_path, synth).run()
    assert (result.failed_step, result.exit_code) == (1, 11)
    first, second = result.steps[:2]
    assert (first.status, first.detail) == ("failed", "synth said no")
    assert second.status == "not-run"


def test_ctrl_c_is_reported_as_an_interruption_at_its_step(tmp_path: Path) -> None:
    def synth() -> None:
        raise KeyboardInterrupt

    result = _up(tmp_path, synth).run()
    assert (result.interrupted, result.exit_code, result.failed_step) == (True, 130, 1)
    assert result.as_json()["result"] == "interrupted"


def _with_ca(pem: str) -> Estate:
    estate = Estate.load(ROOT, "prod", check_fresh=False)
    observed = {**estate.env.observed, CA_OUTPUT: {"sensitive": False, "type": "string",
                                                   "value": pem}}
    return attrs.evolve(estate, env=attrs.evolve(estate.env, observed=observed))


def test_the_authority_step_checks_a_known_authority_and_refuses_a_changed_one(
        tmp_path: Path) -> None:
    """Re-run after the import: nothing to wait for, one read; the primary's object
    differing from pg_tls_ca fails the step (trust on first use), naming --rotate."""
    def refused(_: Estate) -> list[str]:
        raise OpsError("the published Postgres authority differs. A deliberate change: "
                       "`edgekit pg import-ca --stack prod --rotate`")

    step = st.StepResult(10, "pg-tls-ca")
    _up(tmp_path, never, estate=_with_ca("PEM"), import_ca=lambda _: []).pg_tls_ca(step)
    assert (step.status, step.waited_for) == ("unchanged", "")
    assert step.detail == "pg_tls_ca in cue/ is the primary's published authority"
    gone = st.StepResult(10, "pg-tls-ca")
    _up(tmp_path, never, estate=_with_ca("PEM"), import_ca=lambda _: None).pg_tls_ca(gone)
    assert gone.status == "unchanged" and "nothing at pg-tls/prod/pg-tokyo.crt now" in \
        gone.detail
    with pytest.raises(OpsError, match="--rotate"):
        _up(tmp_path, never, estate=_with_ca("PEM"), import_ca=refused).pg_tls_ca(
            st.StepResult(10, "pg-tls-ca"))
    dry = st.StepResult(10, "pg-tls-ca")
    _up(tmp_path, never, UpSettings(env="prod", dry_run=True)).pg_tls_ca(dry)
    assert (dry.status, dry.detail) == (
        "would", "wait for pg-tls/prod/pg-tokyo.crt, import it as pg_tls_ca, commit and push")


def test_no_push_commits_and_prints_the_push_and_pushes_nothing(
        repo: tuple[Path, GitServer]) -> None:
    """--no-push: the deploy-ref and push steps print the command (never run it), the
    files up wrote are committed; once the operator pushed, a re-run has nothing to do."""
    root, server = repo
    up = _up(root, never, UpSettings(env="prod", push=False),
             committed_paths=lambda: [root / "cue" / "outputs"])
    up.ref = DeployRef(root, "origin", "deploy/prod")  # what the preflight sets
    first = st.StepResult(4, "deploy-ref")
    up.deploy_ref(first)
    assert first.status == "printed"
    assert "run `git push origin HEAD:refs/heads/deploy/prod`" in first.detail
    (root / "cue" / "outputs" / "prod.cue").write_text("imported\n")
    second = st.StepResult(8, "push")
    up.push(second)
    assert second.status == "printed" and second.detail.startswith("committed ")
    assert "git push origin HEAD:refs/heads/deploy/prod" in second.detail
    assert server.ref("estate", "deploy/prod") is None  # nothing pushed
    assert git_in(root, "show", "--name-only", "--format=", "HEAD").stdout.split() == [
        "cue/outputs/prod.cue"]
    git_in(root, "push", "--quiet", "origin", "HEAD:refs/heads/deploy/prod")  # the operator
    again = st.StepResult(8, "push")
    up.push(again)
    assert again.status == "unchanged"
    assert server.ref("estate", "deploy/prod") == git_in(root, "rev-parse", "HEAD").stdout.strip()
