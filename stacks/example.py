"""A small example stack: one Hetzner server and a generated password.

The reference estate (prod, staging) replaces it as the VPS and Cloudflare
constructs land; it shows the core model: variables, a provider, resources,
references and outputs.
"""

from __future__ import annotations

from edgekit import App, Output, Provider, R2State, Resource, Stack, Variable

# Placeholder account: `tofu init` with the real backend needs the team's own id.
EXAMPLE_ACCOUNT_ID = "00000000000000000000000000000000"


class ExampleStack(Stack):
    def __init__(self, scope: App, id: str) -> None:
        super().__init__(
            scope, id, state=R2State(account_id=EXAMPLE_ACCOUNT_ID, bucket="edgekit-state")
        )
        token = Variable(self, "hcloud_token", type="string", sensitive=True,
                         description="Hetzner Cloud API token (TF_VAR_hcloud_token).")
        Provider(self, "hcloud", type="hcloud", config={"token": token.ref()})

        password = Resource(self, "app-secret", type="random_password",
                            config={"length": 32, "special": False})
        server = Resource(
            self, "edge-1", type="hcloud_server",
            config={
                "name": "example-edge-1",
                "server_type": "cx23",
                "image": "debian-12",
                "location": "nbg1",
                "labels": {"stack": id, "role": "edge"},
                "public_net": {"ipv4_enabled": True, "ipv6_enabled": True},
            },
        )
        Output(self, "edge_1_ipv4", value=server.attr("ipv4_address"),
               description="Public IPv4 of edge-1.")
        Output(self, "app_secret", value=password.attr("result"), sensitive=True,
               description="Generated application secret.")
