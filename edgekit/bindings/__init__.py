"""L1: typed configurations for every pinned provider, generated from the committed schemas.

One module per provider (`edgekit.bindings.hcloud`, `.cloudflare`, `.random`, `.linode`,
`.vultr`, `.digitalocean`), each imported only when a stack asks for it. Each resource,
data source, nested block and provider block is a ``TypedDict`` named after it
(``hcloud_server`` → ``HcloudServer``, its ``public_net`` block → ``HcloudServer_PublicNet``,
``data.hcloud_image`` → ``DataHcloudImage``, the provider block → ``HcloudProvider``), with
the schema's description of every attribute. mypy and editors read the types from the
stubs; at runtime each name is ``dict``, so a binding costs nothing to import or call::

    from edgekit import App, LocalState, Resource, Stack
    from edgekit.bindings.hcloud import HcloudServer, HcloudServer_PublicNet

    app = App()
    stack = Stack(app, "example", state=LocalState())
    Resource(stack, "edge-1", type="hcloud_server", config=HcloudServer(
        name="edge-1", server_type="cx23", image="debian-12",
        public_net=HcloudServer_PublicNet(ipv4_enabled=True)))

mypy reports an unknown argument (``server_typ=``), a missing required one, a read-only
attribute (``ipv4_address=``, which the provider computes) or a list where a string goes.
Every value also takes a `Ref` or a ``${...}`` expression. Regenerate with
``python tools/gen_bindings.py`` after ``make schemas``; a test keeps them current.
"""
