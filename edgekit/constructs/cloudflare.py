"""The stack's Cloudflare provider, declared once by the first Cloudflare construct in it.

Every construct that makes Cloudflare resources (`Tunnel`, `EdgeWorker`, `Hyperdrive`,
`EdgeSecurity`, `R2Bucket`, `R2LogSink`, `PgBackups`) calls `cloudflare_provider`: a stack
that already has a default ``cloudflare`` provider keeps it; otherwise the stack gets one,
configured from the sensitive variable `TOKEN_VARIABLE` (``TF_VAR_cloudflare_api_token``).
"""

from __future__ import annotations

from edgekit.core.construct import Construct
from edgekit.core.elements import Provider, Variable, stack_of

TOKEN_VARIABLE = "cloudflare_api_token"


def cloudflare_provider(scope: Construct) -> Provider:
    """The default ``cloudflare`` provider of `scope`'s stack, declared if it has none."""
    stack = stack_of(scope)
    for child in stack.node.children:
        if isinstance(child, Provider) and child.type == "cloudflare" and child.alias is None:
            return child
    token = stack.node.try_find_child(TOKEN_VARIABLE)
    if not isinstance(token, Variable):
        token = Variable(stack, TOKEN_VARIABLE, type="string", sensitive=True,
                         description="Cloudflare API token (TF_VAR_cloudflare_api_token).")
    return Provider(stack, "cloudflare", type="cloudflare", config={"api_token": token.ref()})
