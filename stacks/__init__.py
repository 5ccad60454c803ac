"""The user's stacks. `make_app` builds the app; `python -m stacks` synthesizes it.

`cdktf.json` runs ``python -m stacks`` (so ``cdktf synth`` works) and
``edgekit synth`` calls `make_app` directly; both refresh the CUE export first (in the
same transaction as the output, see `edgekit.project`). Building the app only reads the
export, so importing and calling `make_app` never writes a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from edgekit import App
from edgekit.cue.model import Estate
from edgekit.estate.account_stacks import BootstrapStack, ZoneStack
from stacks.estate import EstateStack
from stacks.example import ExampleStack

ROOT = Path(__file__).resolve().parent.parent


def make_app(outdir: str | os.PathLike[str] | None = None) -> App:
    app = App(outdir=outdir)
    ExampleStack(app, "example")
    estates = [Estate.load(ROOT, name, refresh=False) for name in ("prod", "staging")]
    bootstrap = BootstrapStack(app, "bootstrap", estates=estates)
    # State in the bootstrap stack's bucket, the environments on the zone stack's zone:
    # these references order the stacks bootstrap → zone → environments (ADR 0007, 0020).
    estates = [_using(e, state_bucket=bootstrap.state_bucket) for e in estates]
    zone = ZoneStack(app, "zone", estates=estates)
    for estate in estates:
        EstateStack(app, _using(estate, zone_id=zone.zone_id))
    return app


def _using(estate: Estate, **cloudflare: Any) -> Estate:
    side = attrs.evolve(estate.env.cloudflare, **cloudflare)
    return attrs.evolve(estate, env=attrs.evolve(estate.env, cloudflare=side))
