"""A stack for one environment of the CUE estate (``envs.<name>`` in cue/)."""

from __future__ import annotations

from edgekit.constructs.facts import layout_of
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, Variable
from edgekit.core.stack import R2State, Stack
from edgekit.cue.generate import placement_tfvars
from edgekit.cue.layout import ENVS_FILE, SERVICES_FILE, layout_of_estate
from edgekit.cue.model import Estate

PLACEMENT_FILE = "placement.auto.tfvars.json"


class EnvStack(Stack):
    """State in the environment's R2 bucket; placement as an OpenTofu variable.

    `placement` (node → services) is declared here and given its value by the
    generated ``placement.auto.tfvars.json`` beside the stack, so changing
    placement in CUE changes a variable, not the stack's code. No deploy revision: what a
    node runs comes from the ``deploy/<env>`` ref it pulls (ADR 0005).
    """

    def __init__(self, scope: Construct, estate: Estate) -> None:
        env = estate.env
        super().__init__(scope, env.name, state=R2State(
            account_id=env.cloudflare.account_id, bucket=env.cloudflare.state_bucket))
        self.estate = estate
        self.declared_layout = layout_of_estate(estate)
        """The environment as the check rules see it, located in CUE (ADR 0029)."""
        recorded = layout_of(self)  # what the constructs below record: fixed in CUE too
        recorded.file, recorded.services_file = ENVS_FILE, SERVICES_FILE
        recorded.delivers_env = True  # the generated services/<svc>/edgekit.json
        self.placement = Variable(
            self, "placement", type="map(list(string))",
            description="Which glued flakes run on which node (generated from cue/).",
        )
        self.add_file(PLACEMENT_FILE, placement_tfvars(estate))
        # Nodes do not read it: their flake configuration (the deploy/<env> ref) says what
        # runs where, so a placement change never touches a server's user data.
        Output(self, "services_by_node", value=self.placement.ref(),
               description="Which glued flakes run on which node (as applied).")
