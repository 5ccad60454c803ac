"""Every stack in stacks/ passes the real `tofu init`, `tofu validate` and `tofu test`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from edgekit import App, LocalState, Resource, Stack, StateEncryption
from stacks import make_app
from tests.conftest import Tofu

APP = make_app()
STACKS = [s.name for s in APP.stacks]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cdktf.out"
    make_app(outdir=out).synth()
    return out


@pytest.mark.tools
@pytest.mark.parametrize("name", STACKS)
def test_stack_validates_and_passes_tofu_test(
    name: str, synthesized: Path, tofu: Tofu, stack_dir_copy: Callable[[Path], Path]
) -> None:
    folder = stack_dir_copy(synthesized / "stacks" / name)
    init = tofu.init(folder)
    assert init.returncode == 0, init.stderr
    validate = tofu(folder, "validate", "-json")
    report = json.loads(validate.stdout)
    assert report["valid"] is True, report
    assert report["warning_count"] == 0, report["diagnostics"]
    test = tofu(folder, "test")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "2 passed, 0 failed" in test.stdout


@pytest.mark.tools
def test_tofu_validate_can_fail(
    synthesized: Path, tofu: Tofu, stack_dir_copy: Callable[[Path], Path]
) -> None:
    """The check above can fail: an attribute the provider does not have is refused."""
    folder = stack_dir_copy(synthesized / "stacks" / STACKS[0])
    path = folder / "cdk.tf.json"
    document = json.loads(path.read_text())
    first_type = sorted(document["resource"])[0]
    first_name = sorted(document["resource"][first_type])[0]
    document["resource"][first_type][first_name]["no_such_attribute"] = "x"
    path.write_text(json.dumps(document))
    assert tofu.init(folder).returncode == 0
    validate = tofu(folder, "validate")
    assert validate.returncode != 0
    assert "no_such_attribute" in validate.stderr


def encrypted_stack(outdir: Path, encryption: StateEncryption | None) -> Path:
    app = App(outdir=outdir)
    stack = Stack(app, "enc", state=LocalState(), encryption=encryption)
    Resource(stack, "id", type="random_id", config={"byte_length": 8})
    app.synth()
    return outdir / "stacks" / "enc"


@pytest.mark.tools
def test_state_and_plans_are_really_encrypted(tmp_path: Path, tofu: Tofu) -> None:
    """A real apply with the default encryption: the state on disk is ciphertext."""
    folder = encrypted_stack(tmp_path / "out", StateEncryption())
    tofu.env["TF_VAR_state_passphrase"] = "a-real-passphrase-for-this-test"
    try:
        init = tofu.init(folder, backend=True)
        assert init.returncode == 0, init.stderr
        plan = tofu(folder, "plan", "-out=tfplan")
        assert plan.returncode == 0, plan.stderr
        assert not (folder / "tfplan").read_bytes().startswith(b"PK")  # plain plans are zips
        apply = tofu(folder, "apply", "-auto-approve", "tfplan")
        assert apply.returncode == 0, apply.stderr
        state = json.loads((folder / "terraform.tfstate").read_text())
        assert "encrypted_data" in state and "resources" not in state
        assert "random_id" not in (folder / "terraform.tfstate").read_text()
        assert tofu(folder, "show").returncode == 0
        tofu.env["TF_VAR_state_passphrase"] = "the-wrong-passphrase-entirely"
        wrong = tofu(folder, "show")
        assert wrong.returncode != 0
        assert "decrypt" in (wrong.stderr + wrong.stdout).lower()
    finally:
        tofu.env.pop("TF_VAR_state_passphrase", None)


@pytest.mark.tools
def test_opting_out_writes_plain_state(tmp_path: Path, tofu: Tofu) -> None:
    folder = encrypted_stack(tmp_path / "out", None)
    assert tofu.init(folder, backend=True).returncode == 0
    apply = tofu(folder, "apply", "-auto-approve")
    assert apply.returncode == 0, apply.stderr
    assert "random_id" in (folder / "terraform.tfstate").read_text()


@pytest.mark.tools
def test_per_node_tunnels_and_load_balancer_pass_the_real_tools(
    tmp_path: Path, tofu: Tofu
) -> None:
    """prod uses per_node but also linode/vultr (unbuildable here); this stack runs the same
    per_node edge on Hetzner only, so the strategy itself is checked by real tofu."""
    import attrs

    from edgekit.constructs.env_stack import EnvStack
    from edgekit.constructs.patterns import EstateEdge, EstateNodes
    from edgekit.cue.model import Estate, Node, TunnelSpec
    from stacks.estate import ROOT, WORKER_SCRIPT

    base = Estate.load(ROOT, "staging", refresh=False)
    env = attrs.evolve(
        base.env,
        nodes={n: Node(name=n, provider="hetzner", region="fsn1", size="cx23",
                       roles=("edge", "postgres") if n == "edge-a" else ("edge",))
               for n in ("edge-a", "edge-b")},
        placement={"edge-a": ("api", "web"), "edge-b": ("api", "web")},
        tunnel=TunnelSpec(strategy="per_node", weights={"edge-a": 70, "edge-b": 30}),
    )
    estate = attrs.evolve(base, env=env)
    app = App(outdir=tmp_path / "out")
    stack = EnvStack(app, estate)
    nodes = EstateNodes(stack, "nodes", estate=estate)
    EstateEdge(stack, "edge", estate=estate, nodes=nodes, worker_script=WORKER_SCRIPT)
    app.synth()
    folder = tmp_path / "out/stacks/staging"
    document = json.loads((folder / "cdk.tf.json").read_text())
    assert len(document["resource"]["cloudflare_zero_trust_tunnel_cloudflared"]) == 3
    assert "cloudflare_load_balancer" in document["resource"]
    init = tofu.init(folder)
    assert init.returncode == 0, init.stderr
    validate = tofu(folder, "validate")
    assert validate.returncode == 0, validate.stderr
    test = tofu(folder, "test")
    assert test.returncode == 0, test.stdout + test.stderr
