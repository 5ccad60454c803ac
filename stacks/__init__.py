"""The user's stacks. `make_app` builds the app; `python -m stacks` synthesizes it.

`cdktf.json` runs ``python -m stacks`` (so ``cdktf synth`` works) and
``edgekit synth`` calls `make_app` directly.
"""

from __future__ import annotations

import os

from edgekit import App
from stacks.example import ExampleStack


def make_app(outdir: str | os.PathLike[str] | None = None) -> App:
    app = App(outdir=outdir)
    ExampleStack(app, "example")
    return app
