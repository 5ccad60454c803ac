"""Deploys you can watch and undo (ADR 0033, 0034).

On the node: `agent.py` (standard library only, no edgekit import) follows the node's ref,
switches, checks health, rolls back by itself and reports ``status/<env>/<node>.json`` to
the logs bucket. On the operator's machine: `edgekit status` (``view.py`` over the reports
of ``reports.py`` and the refs of ``git.py``), `edgekit deploy` and `edgekit rollback`
(``rollout.py``: waves from ``plan.py``), registered by ``cli.py``. ``refs.py`` names the refs
and objects both sides use; ``plan.py`` also writes each node's agent settings
(``nix/deploy/<env>.json``).
"""
