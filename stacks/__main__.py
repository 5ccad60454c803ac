"""Entry point for ``cdktf synth`` (``"app": "python -m stacks"`` in cdktf.json).

It runs the same synth as ``edgekit synth`` (CUE refresh, rules, generated files and
``cdktf.out`` in one transaction); the output folder is ``$CDKTF_OUTDIR`` or cdktf.out.
"""

import sys

from edgekit import EdgekitError
from edgekit.project import synth_project
from stacks import ROOT, make_app

USAGE = """usage: python -m stacks

Synthesize every stack of this project into $CDKTF_OUTDIR (default: cdktf.out), as
`cdktf synth` does. Takes no arguments; `edgekit synth --help` has the options."""

if __name__ == "__main__":
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(USAGE)
        sys.exit(0)
    if sys.argv[1:]:
        print(f"edgekit: python -m stacks takes no arguments (got {' '.join(sys.argv[1:])})"
              f"\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    try:
        report = synth_project(ROOT, make_app).synth
    except EdgekitError as err:
        print(f"edgekit: {err}", file=sys.stderr)
        sys.exit(1)
    for warning in report.warnings:
        print(f"edgekit: warning: {warning}", file=sys.stderr)
    for line in report.suppressed:
        print(f"edgekit: {line}", file=sys.stderr)
    print(f"synthesized {', '.join(report.stacks)} into {report.outdir}")
