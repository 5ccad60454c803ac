"""Entry point for ``cdktf synth`` (``"app": "python -m stacks"`` in cdktf.json)."""

from stacks import make_app

if __name__ == "__main__":
    report = make_app().synth()
    print(f"synthesized {', '.join(report.stacks)} into {report.outdir}")
