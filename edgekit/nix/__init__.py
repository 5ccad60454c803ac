"""Adapter to Nix: the pure composition of nodes (`compose`) and its evaluation by the real
``nix-instantiate`` (`evaluate`). Nothing here needs nixpkgs."""
