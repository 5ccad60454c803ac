"""Every stack in stacks/ passes the real `tofu init`, `tofu validate` and `tofu test`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from edgekit import App, LocalState, Resource, Stack, StateEncryption
from edgekit.providers.pins import PINS
from stacks import make_app
from tests.conftest import Tofu
from tools.toolpaths import plugin_dir

APP = make_app()
STACKS = [s.name for s in APP.stacks]


def missing_providers(name: str) -> list[str]:
    """Providers a stack uses whose binary is not in the tool cache."""
    (result,) = APP.synth_results([name])
    return [p for p in result.providers if not provider_binary(p).is_file()]


def provider_binary(name: str) -> Path:
    pin = PINS[name]
    return (Path(plugin_dir()) / "registry.opentofu.org" / pin.source / pin.version /
            "linux_amd64" / f"terraform-provider-{name}_v{pin.version}")


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
    missing = missing_providers(name)
    assert not missing, (f"stack {name} needs providers that are not built: "
                         f"{', '.join(missing)}; run `make tools` (tools/build.sh)")
    folder = stack_dir_copy(synthesized / "stacks" / name)
    assert "2 passed, 0 failed" in _tofu_checks(folder, tofu)


def _tofu_checks(folder: Path, tofu: Tofu) -> str:
    """init, validate (valid, no warning), test (passing); what `tofu test` printed."""
    init = tofu.init(folder)
    assert init.returncode == 0, init.stderr
    validate = tofu(folder, "validate", "-json")
    report = json.loads(validate.stdout)
    messages = [f"{d['severity']}: {d['summary']}: {d.get('detail', '')} "
                f"@ {d.get('range', {}).get('filename', '')}:{d.get('address', '')}"
                for d in report["diagnostics"]]
    assert report["valid"] is True, "\n".join(messages)
    assert report["warning_count"] == 0, "\n".join(messages)
    test = tofu(folder, "test")
    assert test.returncode == 0, test.stdout + test.stderr
    return test.stdout


@pytest.mark.tools
def test_prod_after_the_imports_validates_with_hyperdrive_and_its_authority(
        tmp_path: Path, tofu: Tofu) -> None:
    """The committed estate has no primary address or authority yet, so the stacks above
    never hold what `edgekit up`'s last step creates: synthesize prod as it is after `up`
    imported both (a real authority made by openssl) and put it through the same checks."""
    import attrs

    from edgekit.cue.model import Estate
    from stacks.estate import EstateStack
    from tests.conftest import ROOT

    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=ca",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-keyout",
                    str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.crt")],
                   check=True, capture_output=True, timeout=60)
    estate = Estate.load(ROOT, "prod", check_fresh=False)
    observed = {**estate.env.observed,
                "pg_primary_private_ip": {"sensitive": False, "type": "string",
                                          "value": "10.2.0.3"},
                "pg_tls_ca": {"sensitive": False, "type": "string",
                              "value": (tmp_path / "ca.crt").read_text()}}
    imported = attrs.evolve(estate, env=attrs.evolve(estate.env, observed=observed))
    app = App(outdir=tmp_path / "out")  # the provider schema check is on
    EstateStack(app, imported)
    app.synth()
    folder = tmp_path / "out" / "stacks" / "prod"
    document = json.loads((folder / "cdk.tf.json").read_text())
    assert set(document["resource"]["cloudflare_hyperdrive_config"]) == {"edge_hyperdrive"}
    assert set(document["resource"]["cloudflare_mtls_certificate"]) == {
        "edge_hyperdrive_server_ca"}
    assert not (folder / "edgekit.later.json").exists()  # nothing left for later
    assert "2 passed, 0 failed" in _tofu_checks(folder, tofu)


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
        state_file = tmp_path / ".edgekit/state/enc/terraform.tfstate"  # beside the output
        state = json.loads(state_file.read_text())
        assert "encrypted_data" in state and "resources" not in state
        assert "random_id" not in state_file.read_text()
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
    assert "random_id" in (tmp_path / ".edgekit/state/enc/terraform.tfstate").read_text()


def test_prod_covers_per_node_tunnels_and_the_load_balancer(synthesized: Path) -> None:
    """prod (checked by real tofu above) is the stack that exercises ADR 0006's per_node
    strategy with its Load Balancer, so no separate stack is needed for them."""
    document = json.loads((synthesized / "stacks/prod/cdk.tf.json").read_text())
    assert len(document["resource"]["cloudflare_zero_trust_tunnel_cloudflared"]) >= 3
    assert "cloudflare_load_balancer" in document["resource"]
