"""The stacks an account and a zone have once, beside one stack per environment (ADR 0007).

    bootstrap   the R2 bucket every other stack keeps its state in. Its own state cannot
                live there (the bucket does not exist before it), so it is local and
                encrypted, in the repository's git-ignored `.edgekit/bootstrap/` (see
                `BOOTSTRAP_STATE`); `edgekit bootstrap` runs it. The bucket has
                ``prevent_destroy``: losing it loses every stack's state.
    zone        what the Cloudflare zone has once (`EdgeSecurity`: entrypoint rulesets and
                zone settings), covering every environment's hostnames; state in R2.

Applied in this order, before the environments: bootstrap → zone → prod, staging. The
order comes from references (ADR 0020): the other stacks keep their state in
``bootstrap.state_bucket`` and the environments use ``zone.zone_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgekit.constructs.edge_security import EdgeSecurity
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, Provider, Resource, Variable
from edgekit.core.errors import ConstructError
from edgekit.core.stack import LocalState, R2State, Stack
from edgekit.cue.model import Estate

BOOTSTRAP_STATE = ".edgekit/bootstrap/terraform.tfstate"
"""Where the bootstrap stack's state lives, relative to the repository root."""
BOOTSTRAP_STATE_FROM_STACK = f"../../../{BOOTSTRAP_STATE}"
"""The same file seen from ``cdktf.out/stacks/bootstrap`` (plain `tofu init` there);
`edgekit bootstrap` passes the absolute path, so another outdir works too."""


def cloudflare_provider(stack: Stack) -> None:
    token = Variable(stack, "cloudflare_api_token", type="string", sensitive=True,
                     description="Cloudflare API token (TF_VAR_cloudflare_api_token).")
    Provider(stack, "cloudflare", type="cloudflare", config={"api_token": token.ref()})


def _one(estates: Sequence[Estate], what: str, values: set[str], scope: Construct) -> str:
    if len(values) != 1:
        raise ConstructError(
            f"[{scope.node.path}] the environments {', '.join(e.env.name for e in estates)} "
            f"name different {what}s ({', '.join(sorted(values))}); one account keeps one")
    return next(iter(values))


class BootstrapStack(Stack):
    """The state bucket of every other stack, with local encrypted state."""

    def __init__(self, scope: Construct, id: str, *, estates: Sequence[Estate]) -> None:
        super().__init__(scope, id, state=LocalState(path=BOOTSTRAP_STATE_FROM_STACK))
        account = _one(estates, "account", {e.env.cloudflare.account_id for e in estates}, self)
        bucket = _one(estates, "state bucket", {e.env.cloudflare.state_bucket for e in estates},
                      self)
        cloudflare_provider(self)
        self.bucket = Resource(self, "state-bucket", type="cloudflare_r2_bucket", config={
            "account_id": account, "name": bucket, "location": "apac"},
            lifecycle={"prevent_destroy": True})
        Output(self, "state_bucket", value=self.bucket.attr("name"),
               description="The R2 bucket holding every other stack's state.")
        self.state_bucket = self.known(bucket)
        """The bucket's name for the other stacks' state: a dependency on this stack."""


class ZoneStack(Stack):
    """Everything the zone has once, for every environment on it."""

    def __init__(self, scope: Construct, id: str, *, estates: Sequence[Estate]) -> None:
        first = estates[0].env.cloudflare
        super().__init__(scope, id, state=R2State(account_id=first.account_id,
                                                  bucket=first.state_bucket))
        cloudflare_provider(self)
        self.security = EdgeSecurity(self, "security", estates=estates)
        self.zone_id = self.known(first.zone_id)
        """The zone this stack secures, for the environments on it: a dependency on it."""
