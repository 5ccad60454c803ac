"""`edgekit logs query` reads the logs mirror and nothing else (issue 26, ADR 0037).

Each escape a DuckDB query has (a file anywhere, a glob, the network, extensions, ATTACH,
COPY ... TO, a symbolic link inside the mirror that leads out) is tried through the command
line: exit code 2, a message that says what was refused, and nothing of the outside file on
stdout. The engine-level tests run the statements straight on the sandboxed connection,
past the statement-type check, to show DuckDB itself refuses them.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from edgekit.obs.cli import add_logs_parser
from edgekit.obs.query import query
from edgekit.obs.sandbox import QueryRefused, sandboxed
from edgekit.obs.testing import gzip_ndjson, make_event

SECRET = "not-a-log-line-7f3a"
MOMENT = datetime(2026, 11, 29, 6, tzinfo=UTC)
KEY = "otel/prod/edge-1/date=2026-11-29/hour=06/1796018400-a.log.gz"


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    """(mirror, outside): a mirror with one log object, and a folder beside it holding a
    secret as CSV, as text and as a valid log object."""
    mirror, outside = tmp_path / "mirror", tmp_path / "outside"
    (mirror / KEY).parent.mkdir(parents=True)
    rng = random.Random(5)
    (mirror / KEY).write_bytes(gzip_ndjson([make_event(MOMENT, "api", "edge-1", rng)] * 3))
    outside.mkdir()
    (outside / "secret.csv").write_text(f"name,value\n{SECRET},1\n")
    (outside / "secret.log.gz").write_bytes(gzip_ndjson(
        [make_event(MOMENT, "api", "edge-1", rng, message=SECRET)]))
    (tmp_path / "mirror-sibling").mkdir()
    (tmp_path / "mirror-sibling" / "s.csv").write_text(f"x\n{SECRET}\n")
    return mirror, outside


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="edgekit")
    add_logs_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_query_over_the_mirror_still_works(places: tuple[Path, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    mirror, _ = places
    code, out, _ = run(["logs", "query", "select service, count(*) n from logs group by all",
                        "--dest", str(mirror)], capsys)
    assert code == 0 and out.splitlines()[2].split() == ["api", "3"]
    # reading the mirror's own files by name is allowed: they are the logs
    code, out, _ = run(["logs", "query", f"select count(*) n from read_text("
                        f"'{mirror / KEY}')", "--dest", str(mirror)], capsys)
    assert code == 0 and out.splitlines()[2].split() == ["1"]


@pytest.mark.parametrize("sql", [
    "select * from read_csv('{outside}/secret.csv')",
    "select * from read_text('{outside}/secret.csv')",
    "select * from read_blob('{outside}/secret.csv')",
    "select * from '{outside}/secret.csv'",
    "select * from glob('{outside}/*')",
    "select * from glob('/etc/*')",
    "select * from read_csv('/etc/passwd')",
    "select * from read_csv('{mirror}/../outside/secret.csv')",
    "select * from read_csv('{mirror}-sibling/s.csv')",
    "select * from read_json('{outside}/secret.log.gz')",
    "select * from read_parquet('https://127.0.0.1:9/x.parquet')",
    "select * from query('select * from read_text(''{outside}/secret.csv'')')",
], ids=["read_csv", "read_text", "read_blob", "replacement-scan", "glob", "glob-etc",
        "etc-passwd", "dot-dot", "prefix-sibling", "read_json", "network", "query-function"])
def test_reading_outside_the_mirror_is_refused(places: tuple[Path, Path], sql: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    mirror, outside = places
    code, out, err = run(["logs", "query", sql.format(mirror=mirror, outside=outside),
                          "--dest", str(mirror)], capsys)
    assert code == 2, (out, err)
    assert SECRET not in out and "root:" not in out and "secret.csv" not in out
    assert "refused" in err and "outside the logs mirror" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("sql", "said"), [
    ("INSTALL httpfs", "refused a LOAD statement"),  # DuckDB types INSTALL as LOAD
    ("LOAD httpfs", "refused a LOAD statement"),
    ("ATTACH '{outside}/x.db' AS x", "refused a ATTACH statement"),
    ("COPY (select 1) TO '{outside}/out.csv'", "refused a COPY statement"),
    ("SET enable_external_access = true", "refused a SET statement"),
    ("select 1; select * from read_csv('{outside}/secret.csv')", "expected one SQL statement"),
])
def test_statements_that_write_attach_or_load_are_refused(
        places: tuple[Path, Path], sql: str, said: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    mirror, outside = places
    code, _, err = run(["logs", "query", sql.format(outside=outside), "--dest",
                          str(mirror)], capsys)
    assert code == 2 and said in err, err
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv", "secret.log.gz"]


@pytest.mark.parametrize(("sql", "said"), [
    ("INSTALL httpfs", "cannot install or load DuckDB extensions"),
    ("LOAD httpfs", "cannot install or load DuckDB extensions"),
    ("ATTACH '{outside}/x.db' AS x", "outside the logs mirror"),
    ("COPY (select 42) TO '{outside}/out.csv'", "outside the logs mirror"),
    ("COPY (select 42) TO '{cwd}/.tmp/out.csv'", "outside the logs mirror"),
])
def test_the_engine_itself_refuses_them_past_the_statement_check(
        places: tuple[Path, Path], sql: str, said: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: the same statements straight on the sandboxed connection."""
    from edgekit.obs.query import failed

    mirror, outside = places
    monkeypatch.chdir(tmp_path)
    con = sandboxed([mirror])
    try:
        with pytest.raises(duckdb.Error) as caught:
            con.execute(sql.format(outside=outside, cwd=tmp_path))
        problem = failed("query failed", caught.value, mirror)
        assert isinstance(problem, QueryRefused) and said in str(problem), str(problem)
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            con.execute(f"SET allowed_directories = ['{outside}/']")
    finally:
        con.close()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv", "secret.log.gz"]
    assert not (tmp_path / ".tmp").exists()


def test_a_symlinked_file_inside_the_mirror_that_leads_out_is_refused(
        places: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The outside file is a valid log object: without the sandbox the view would read it."""
    mirror, outside = places
    link = (mirror / KEY).with_name("1796018401-link.log.gz")
    link.symlink_to(outside / "secret.log.gz")
    code, out, err = run(["logs", "query", "select body from logs", "--dest", str(mirror)],
                         capsys)
    assert code == 2 and SECRET not in out
    assert f"{link} lies in the logs mirror but is a symbolic link" in err
    assert str(outside / "secret.log.gz") in err


def test_a_symlinked_folder_inside_the_mirror_that_leads_out_is_refused(
        places: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    mirror, outside = places
    (mirror / "otel" / "prod" / "edge-9").symlink_to(outside, target_is_directory=True)
    code, out, err = run(["logs", "query", "select * from read_csv("
                          f"'{mirror}/otel/prod/edge-9/secret.csv')", "--dest", str(mirror)],
                         capsys)
    assert code == 2 and SECRET not in out
    assert "is a symbolic link (or below one)" in err


def test_the_mirror_itself_may_be_a_symlink(places: tuple[Path, Path], tmp_path: Path) -> None:
    """A mirror kept elsewhere and linked (e.g. .edgekit/logs -> /data/logs) still reads."""
    mirror, _ = places
    (tmp_path / "linked").symlink_to(mirror, target_is_directory=True)
    assert query(tmp_path / "linked", "select count(*) from logs")[1] == [(3,)]


def test_export_writes_only_its_own_file(places: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    mirror, outside = places
    out = tmp_path / "result.csv"
    code, _, err = run(["logs", "query", "select service from logs", "--dest", str(mirror),
                        "--csv", str(out)], capsys)
    assert code == 0, err
    assert out.read_text().splitlines() == ["service", "api", "api", "api"]
    code, _, err = run(["logs", "query", f"select * from read_csv('{outside}/secret.csv')",
                        "--dest", str(mirror), "--csv", str(tmp_path / "leak.csv")], capsys)
    assert code == 2 and "outside the logs mirror" in err
    assert not (tmp_path / "leak.csv").exists()
