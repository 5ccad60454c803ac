"""Shared fixtures: a fresh app per test, and the real tools built by tools/build.sh."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, settings

from edgekit import App, R2State, Service, Stack
from edgekit.obs.testing import SeaweedS3
from tools.toolpaths import plugin_dir, tofu_bin

ROOT = Path(__file__).resolve().parent.parent

# Property tests: a fixed, derandomized profile keeps `make test` fast and repeatable;
# HYPOTHESIS_PROFILE=full explores more.
settings.register_profile("fixed", max_examples=40, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], database=None)
settings.register_profile("full", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))
ACCOUNT = "0123456789abcdef0123456789abcdef"


def _checkout_state() -> tuple[str, dict[str, tuple[int, int]]] | None:
    """`git status` and every tracked file's mtime and size, or None outside a checkout."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if status.returncode != 0 or tracked.returncode != 0:
        return None
    stats = {}
    for name in filter(None, tracked.stdout.split("\0")):
        try:
            info = (ROOT / name).stat()
        except OSError:
            continue
        stats[name] = (info.st_mtime_ns, info.st_size)
    return status.stdout, stats


@pytest.fixture(scope="session", autouse=True)
def checkout_unchanged() -> Iterator[None]:
    """The suite never writes into the checkout: after it, `git status` is what it was and
    no tracked file was rewritten (mtime), even with the same bytes."""
    before = _checkout_state()
    yield
    after = _checkout_state()
    if before is None or after is None or after == before:
        return
    changed = sorted(set(after[0].splitlines()) ^ set(before[0].splitlines()))
    changed += sorted(name for name, seen in after[1].items() if before[1].get(name) != seen)
    pytest.fail("the tests changed the checkout (a test must work in tmp_path or a "
                "project copy; or a file was edited while the suite ran):\n  "
                + "\n  ".join(changed[:20]))


@pytest.fixture
def app(tmp_path: Path) -> App:
    return App(outdir=tmp_path / "cdktf.out", check_schemas=False)


@pytest.fixture
def stack(app: App) -> Stack:
    return Stack(app, "test", state=R2State(account_id=ACCOUNT, bucket="edgekit-state"))


def plain_services(services: Mapping[str, Service]) -> dict[str, Service]:
    """The reference services as a Python stack gives them to L2 constructs: without env
    and secrets, which no L2 construct delivers (check rule EK184)."""
    return {n: attrs.evolve(s, env={}, secrets=()) for n, s in services.items()}


class Tofu:
    """The real OpenTofu with the locally built providers; no network, no credentials."""

    def __init__(self) -> None:
        self.binary = tofu_bin()
        self.env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": os.devnull,
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }

    def __call__(self, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args, "-no-color"], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=300)

    def init(self, cwd: Path, backend: bool = False) -> subprocess.CompletedProcess[str]:
        """`tofu init` offline; `backend=True` only for stacks with a local backend."""
        flags = [] if backend else ["-backend=false"]
        return self(cwd, "init", *flags, "-input=false", f"-plugin-dir={plugin_dir()}")


@pytest.fixture(scope="session")
def tofu() -> Tofu:
    if not Path(tofu_bin()).is_file():
        pytest.fail(f"OpenTofu not found at {tofu_bin()}: run `make tools` (make test does)")
    return Tofu()


@pytest.fixture
def stack_dir_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """Copy a synthesized stack folder so tofu's .terraform never lands in cdktf.out."""

    def copy(folder: Path) -> Path:
        target = tmp_path / "tofu" / folder.name
        shutil.copytree(folder, target)
        return target

    return copy


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the project to run the CLI in: tests never write into the checkout.

    The CUE-exported JSON Schemas are copied too (``EDGEKIT_SCHEMA_DIR`` points there).
    """
    root = tmp_path / "project"
    for name in ("cue", "services", "stacks", "nix"):
        shutil.copytree(ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    shutil.copy(ROOT / "cdktf.json", root / "cdktf.json")
    shutil.copytree(ROOT / "edgekit/schema/cue", root / "schema")
    return root


@pytest.fixture
def project_cwd(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process commands run in a copy of the project: tests never chdir into the
    checkout (a command there could write into it)."""
    monkeypatch.chdir(project_copy)
    monkeypatch.setenv("EDGEKIT_SCHEMA_DIR", str(project_copy / "schema"))
    return project_copy


def tree_of(root: Path) -> dict[str, bytes]:
    """Every file below `root` (bytes), to assert that nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def cli(project_copy: Path) -> RunCli:
    """Run `python -m edgekit.cli ARGS` (or `python -m stacks` with module=) in the copy."""

    def run(*args: str, stdin: str | None = None, module: str = "edgekit.cli",
            env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "EDGEKIT_SCHEMA_DIR": str(project_copy / "schema"),
                    **(env or {})}
        return subprocess.run([*prefix, sys.executable, "-m", module, *args],
                              cwd=project_copy, env=full_env, input=stdin,
                              capture_output=True, text=True, timeout=300)

    return run


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server (checks signatures) for one test module; the modules that need
    a bucket or a different scope define their own `s3`."""
    server = SeaweedS3.start(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def logs_s3(tmp_path: Path) -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server for one test, holding the reference estate's logs bucket
    (prod's `cloudflare.logs_bucket`, where the nodes publish their keys and reports)."""
    server = SeaweedS3.start(tmp_path / "logs-s3")
    try:
        server.client().create_bucket(Bucket="edgekit-logs")
        yield server
    finally:
        server.stop()


def default_ctrl_c() -> None:
    """A child's Ctrl-C as in a terminal (pass as ``preexec_fn``): a shell that starts the
    suite in the background (``make test &``, nohup, some CI runners) ignores SIGINT, its
    children inherit that, and Python then never raises KeyboardInterrupt, so a test that
    sends SIGINT would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
