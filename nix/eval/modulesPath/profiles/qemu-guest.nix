# Stand-in (listed in nix/eval/standins.nix): upstream's profiles/qemu-guest.nix only adds the
# virtio kernel modules to the initrd, which the node evaluation does not model.
{ ... }: { }
