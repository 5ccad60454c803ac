"""L3: the reference estate's wiring, read from CUE and built from the L2 constructs.

`EnvStack` (a stack per CUE environment), `EstateNodes` and `EstateEdge` (an environment's
nodes and front door), `BootstrapStack` and `ZoneStack` (what an account and a zone have
once), and `mesh_plan` (an environment's WireGuard mesh). This layer is the only one that
reads `edgekit.cue.model`: it turns an `Estate` into the plain values the L2 constructs
take (`Service`, `CloudflareZone`, placements, addresses). Imports point down only: the L2
constructs under `edgekit.constructs` never import this package (a test enforces it).
"""
