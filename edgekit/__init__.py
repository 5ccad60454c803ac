"""edgekit: Python classes in, OpenTofu JSON out.

The public surface is what this module exports; everything else is internal.
"""

from edgekit.app import App, SynthReport
from edgekit.core.aspects import Aspect
from edgekit.core.construct import Construct, Node
from edgekit.core.elements import (
    DataSource,
    Element,
    Local,
    Module,
    Output,
    Provider,
    Resource,
    Variable,
)
from edgekit.core.errors import (
    ConstructError,
    EdgekitError,
    OutputError,
    Problem,
    SynthError,
)
from edgekit.core.overrides import DELETE
from edgekit.core.refs import Ref
from edgekit.core.stack import LocalState, R2State, Stack, StateEncryption


def __getattr__(name: str) -> str:
    if name == "__version__":  # read from the distribution's metadata, when first asked
        from edgekit.core.version import edgekit_version

        return edgekit_version()
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


__all__ = [
    "DELETE",
    "App",
    "Aspect",
    "Construct",
    "ConstructError",
    "DataSource",
    "EdgekitError",
    "Element",
    "Local",
    "LocalState",
    "Module",
    "Node",
    "Output",
    "OutputError",
    "Problem",
    "Provider",
    "R2State",
    "Ref",
    "Resource",
    "Stack",
    "StateEncryption",
    "SynthError",
    "SynthReport",
    "Variable",
    "__version__",
]
