"""Entry point for ``cdktf synth`` (``"app": "python -m stacks"`` in cdktf.json)."""

import sys

from edgekit import EdgekitError
from stacks import make_app

if __name__ == "__main__":
    try:
        report = make_app().synth()
    except EdgekitError as err:
        print(f"edgekit: {err}", file=sys.stderr)
        sys.exit(1)
    for warning in report.warnings:
        print(f"edgekit: warning: {warning}", file=sys.stderr)
    print(f"synthesized {', '.join(report.stacks)} into {report.outdir}")
