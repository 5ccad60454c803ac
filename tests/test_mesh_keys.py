"""`edgekit logs mesh-keys`: the public keys nodes published through their logs (ADR 0010),
read back with DuckDB from files laid out and shaped exactly as Vector's sink writes them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.obs.mesh_keys import PREFIX, SERVICE
from edgekit.obs.testing import gzip_ndjson, make_event, object_key

OLD = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28="
NEW = "Zm9vYmFyIGZvb2JhciBmb29iYXIgZm9vYmFyIGZvb2I="
PG = "cGctdG9reW8tcHVibGljLWtleS0wMTIzNDU2Nzg5YWI="


def _publish(dest: Path, stack: str, node: str, body: str, moment: datetime) -> None:
    event = make_event(moment, SERVICE, node, random.Random(1), message=body)
    key = object_key(stack, node, moment.replace(minute=0, second=0, microsecond=0), moment)
    path = dest / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip_ndjson([event]))


def test_newest_key_per_node_as_cue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "logs"
    start = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    _publish(dest, "prod", "edge-1", PREFIX + OLD, start)
    _publish(dest, "prod", "edge-1", PREFIX + NEW, start + timedelta(hours=1))  # re-keyed
    _publish(dest, "prod", "pg-tokyo", PREFIX + PG, start)
    _publish(dest, "staging", "staging-1", PREFIX + OLD, start)  # another stack
    _publish(dest, "prod", "edge-2", "api handled GET / -> 200", start)  # not a key record
    assert main(["logs", "mesh-keys", "--stack", "prod", "--dest", str(dest)]) == 0
    assert capsys.readouterr().out == (
        "envs: prod: mesh: public_keys: {\n"
        f'\t"edge-1": "{NEW}"\n'
        f'\t"pg-tokyo": "{PG}"\n'
        "}\n")


def test_a_malformed_key_is_refused_and_reported(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "logs"
    start = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    _publish(dest, "prod", "edge-1", PREFIX + "not-a-key", start)
    _publish(dest, "prod", "pg-tokyo", PREFIX + PG, start)
    assert main(["logs", "mesh-keys", "--stack", "prod", "--dest", str(dest)]) == 1
    captured = capsys.readouterr()
    assert "ignored node edge-1" in captured.err and "'not-a-key'" in captured.err
    assert '"edge-1"' not in captured.out and f'"pg-tokyo": "{PG}"' in captured.out


def test_no_key_yet_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "mesh-keys", "--stack", "prod", "--dest", str(tmp_path)]) == 1
    assert "edgekit logs sync --stack prod" in capsys.readouterr().err
