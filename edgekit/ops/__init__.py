"""Operating the estate with the real `tofu`: plan, apply, drift, import and a picture.

`cli.py` is the command line; `commands.py` runs plan/apply/drift over stacks in
dependency order; `tofu.py` runs tofu (init once per stack, cached in ``.edgekit/``);
`secrets.py` finds the operator's variables; `summary.py` reads ``tofu show -json``;
`importer.py` adopts existing objects; `graph.py` draws the estate; `progress.py` shows
progress on a terminal.
"""
