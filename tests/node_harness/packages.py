"""What stands in a node's ``/nix/store`` for the harness: the store files the evaluation
kept (`store_inventory`, from store.nix), the repository files the glued flakes use, and
real programs for the packages (`package_shims`).

PostgreSQL is the pinned 17 (tools/build.sh) behind thin wrappers that give it what the
nixpkgs build has and this one lacks: its socket directory ``/run/postgresql`` (nixpkgs
patches the default; the client tools get ``PGHOST`` unless set, the server the same
``unix_socket_directories`` on its command line). pgBackRest is the pinned 2.57.0. Python
(``python3-env``) is the host's 3.11 with the test virtualenv's packages (psycopg).
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Any

from edgekit.nix.evaluate import evaluate
from tests.pg_server import pg_bin, runtime_tools

HERE = Path(__file__).resolve().parent
SOCKET_DIR = "/run/postgresql"


def store_inventory(repo: Path, node: str) -> dict[str, Any]:
    """store.nix for `node` of the repository at `repo`: {files, sources}."""
    value = evaluate(f'import {HERE / "store.nix"} {{ repo = /. + "{repo}"; node = "{node}"; }}')
    assert isinstance(value, dict)
    return value


def _script(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def package_shims(base: Path) -> dict[str, str]:
    """store name prefix -> a host folder standing for that package (made under `base`)."""
    shims = base / "shims"
    real = pg_bin()
    postgres = shims / "postgresql"
    for program in sorted(real.iterdir()):
        if program.name == "postgres":
            body = (f'exec {program} -c unix_socket_directories={SOCKET_DIR} "$@"\n')
        else:
            body = f': "${{PGHOST:={SOCKET_DIR}}}"\nexport PGHOST\nexec {program} "$@"\n'
        _script(postgres / "bin" / program.name, "#!/bin/sh\n" + body)
    backrest = shims / "pgbackrest"
    _script(backrest / "bin" / "pgbackrest",
            f'#!/bin/sh\nexec {runtime_tools() / "bin" / "pgbackrest"} "$@"\n')
    site = sysconfig.get_paths()["purelib"]
    python = shims / "python3-env"
    _script(python / "bin" / "python3",
            f'#!/bin/sh\nexport PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{site}"\n'
            f'exec /usr/bin/python3 "$@"\n')
    return {"postgresql-": str(postgres), "pgbackrest-": str(backrest),
            "python3-env-": str(python)}


def read_only_extras(repo: Path) -> list[str]:
    """Host folders every unit sees read-only: the pinned PostgreSQL and pgBackRest, the
    repository (services' sources) and the virtualenv's packages."""
    return sorted({str(runtime_tools()), str(repo), str(Path(sys.prefix))})
