# Top-level flake: composes one nixosConfigurations.<node> per node from the placement
# that edgekit exports. A skeleton until the glued-flakes work lands (see
# docs/structure/index.md); it has no inputs so it evaluates offline.
{
  description = "edgekit reference estate: NixOS nodes composed from glued service flakes";

  outputs = { self }: {
    nixosConfigurations = { };
  };
}
