"""The public surface is deliberate, and the pins agree with the tool builds."""

from __future__ import annotations

import re

import edgekit
from edgekit.providers.pins import PINS
from tests.conftest import ROOT


def test_public_names_are_locked() -> None:
    assert sorted(edgekit.__all__) == sorted([
        "DELETE", "App", "Aspect", "Construct", "ConstructError", "DataSource", "EdgekitError",
        "Element", "Local", "LocalState", "Module", "Node", "Output", "OutputError", "Problem",
        "Provider", "R2State", "Ref", "Resource", "S3State", "Stack", "StateEncryption",
        "SynthError", "SynthReport", "Variable", "__version__",
        # the constructs a stack is written with, loaded on first use
        "VpsNode", "PrivateNetwork", "Firewall", "Volume", "Snapshot", "FloatingIp",
        "LoadBalancer", "PgPrimary", "Tunnel", "EdgeWorker", "EdgeSecurity", "Hyperdrive",
        "GluedFlake", "R2Bucket", "R2LogSink", "Mesh",
        # the supported clouds' names (edgekit.clouds)
        "PROVIDERS",
        # the plain values they take
        "Service", "Needs", "Cache", "RateLimit", "CloudflareZone",
        # the enumerations they take, as Literal types (a typo is a type error)
        "CloudName", "Role", "TunnelStrategy", "R2Location",
    ])
    for name in edgekit.__all__:
        assert hasattr(edgekit, name), name
    assert set(edgekit.__all__) <= set(dir(edgekit))


def test_importing_edgekit_loads_no_construct() -> None:
    import subprocess
    import sys

    code = ("import sys, edgekit; print(sorted(m for m in sys.modules "
            "if m.startswith(('edgekit.constructs', 'edgekit.cue', 'jsonschema', "
            "'importlib.metadata'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_provider_pins_match_tools_versions_env() -> None:
    text = (ROOT / "tools/versions.env").read_text()
    built = {}
    for variable, release_column in (("PROVIDERS", 3), ("SOURCE_PROVIDERS", 1)):
        block = re.search(rf'^{variable}="(.*?)"', text, re.S | re.M)
        assert block is not None, variable
        for line in block.group(1).strip().splitlines():
            fields = line.split()
            built[fields[0].split("/")[1]] = (fields[0], fields[release_column])
    assert built == {name: (pin.source, pin.version) for name, pin in PINS.items()}


def test_every_pin_has_a_committed_schema() -> None:
    for pin in PINS.values():
        assert (ROOT / f"edgekit/schema/data/{pin.name}-{pin.version}.json.gz").is_file(), pin


def test_importing_edgekit_does_not_load_provider_schemas() -> None:
    import subprocess
    import sys

    code = ("import sys, edgekit; "
            "print('edgekit.schema.provider_schema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_version_is_written_once_and_read_from_the_metadata(tmp_path: object) -> None:
    from importlib.metadata import version

    from edgekit import App, LocalState, Stack
    from edgekit.testing import synth

    assert edgekit.__version__ == version("edgekit")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'\nversion = "{edgekit.__version__}"\n' in pyproject
    stack = Stack(App(outdir=f"{tmp_path}/out"), "s", state=LocalState())
    assert synth(stack)["//"]["metadata"]["generator"] == f"edgekit {version('edgekit')}"
