"""The deploy tests' fixtures: the git server, the nodes' world (tests/deploy/world.py)."""

from tests.deploy.world import bucket, documents, pg, world  # noqa: F401
from tests.gitserver import git_server  # noqa: F401
