"""A test harness that runs a node's evaluated NixOS units with real programs (issue 22).

See the README, "The node harness", for the systemd semantics it honours and those it does not.
"""
