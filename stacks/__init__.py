"""The user's stacks. `make_app` builds the app; `python -m stacks` synthesizes it.

`cdktf.json` runs ``python -m stacks`` (so ``cdktf synth`` works) and
``edgekit synth`` calls `make_app` directly. Environment stacks take their values
from the CUE export (refreshed first when cue/ changed and `cue` is installed).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgekit import App
from edgekit.cue.model import Estate
from stacks.estate import ProdStack, StagingStack
from stacks.example import ExampleStack

ROOT = Path(__file__).resolve().parent.parent


def make_app(outdir: str | os.PathLike[str] | None = None) -> App:
    app = App(outdir=outdir)
    ExampleStack(app, "example")
    ProdStack(app, Estate.load(ROOT, "prod"))
    StagingStack(app, Estate.load(ROOT, "staging", refresh=False))
    return app
