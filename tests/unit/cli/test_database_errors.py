"""A database that is missing, unreachable, malformed or not migrated: every command that
touches it says so in one line with the fix, exits 2, and creates nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from dunning.cli.main import main
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from tests.services import free_port

# Every command that reads or writes the database (the daemons are further down).
COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["invoice", "show", "in_1"],
    ["invoice", "show", "in_1", "--json"],
    ["invoice", "pause", "in_1", "--reason", "asked"],
    ["invoice", "retry", "in_1", "--reason", "asked"],
    ["invoice", "mark-paid", "in_1", "--reason", "asked"],
    ["endpoints", "list"],
    ["endpoints", "add", "https://example.com/hooks"],
    ["endpoints", "remove", "1"],
]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def empty_file_url(tmp_path: Path) -> str:
    """A SQLite database that exists but was never migrated."""
    path = tmp_path / "empty.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect():
        pass
    engine.dispose()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_unmigrated_database_says_run_db_upgrade(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", empty_file_url(tmp_path))
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert "has no schema yet" in line
    assert "run `dunning db upgrade`" in line


def test_an_older_schema_names_both_revisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = empty_file_url(tmp_path)
    engine = make_engine(url)
    upgrade(engine, "0001")
    engine.dispose()
    monkeypatch.setenv("DUNNING_DATABASE_URL", url)
    assert main(["status"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "at schema revision 0001, this version needs" in line
    assert "run `dunning db upgrade`" in line


@pytest.mark.parametrize("args", COMMANDS[:1] + COMMANDS[2:3] + COMMANDS[4:5] + COMMANDS[7:8])
def test_a_missing_sqlite_file_is_not_created(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "typo.sqlite3"
    monkeypatch.setenv("DUNNING_DATABASE_URL", f"sqlite:///{path}")
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert f"the database file {path} does not exist" in line
    assert "dunning db upgrade" in line
    assert not path.exists()


@pytest.mark.parametrize("args", [["status"], ["invoice", "show", "x"], ["db", "upgrade"]])
def test_a_missing_folder_is_not_created(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "no" / "such"
    monkeypatch.setenv("DUNNING_DATABASE_URL", f"sqlite:///{folder / 'd.sqlite3'}")
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert f"the folder {folder}" in line
    assert "does not exist" in line
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("args", COMMANDS[:1] + COMMANDS[2:3] + COMMANDS[7:8] + [["db", "upgrade"]])
def test_a_malformed_url_names_the_variable(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUNNING_DATABASE_URL", "postgresq://user:hunter2@db/dunning")
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert "DUNNING_DATABASE_URL is not a database URL" in line
    assert "hunter2" not in line  # the rest of the URL may be a password


@pytest.mark.parametrize("args", COMMANDS[:1] + COMMANDS[2:3] + COMMANDS[7:8] + [["db", "upgrade"]])
def test_an_unreachable_server_is_named_without_its_password(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://dunning:hunter2@127.0.0.1:{free_port()}/dunning"
    monkeypatch.setenv("DUNNING_DATABASE_URL", url)
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: cannot use the database postgresql://dunning:***@127.0.0.1")
    assert "check DUNNING_DATABASE_URL" in line
    assert "hunter2" not in line


def test_import_on_an_unmigrated_database_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "book.jsonl").write_text('{"id": "c", "email": "c@example.com"}\n')
    monkeypatch.setenv("DUNNING_DATABASE_URL", empty_file_url(tmp_path))
    assert main(["import", str(tmp_path / "book.jsonl")]) == 2
    assert "run `dunning db upgrade`" in one_line(capsys.readouterr().err)


def test_the_embedded_default_is_created_by_db_upgrade_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a fresh checkout (the tests run in tmp_path): no ./var yet
    assert main(["status"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "var/dunning.sqlite3 does not exist: run `dunning db upgrade` to create it" in line
    assert not (tmp_path / "var").exists()
    # when the database is created, then the commands work
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "var" / "dunning.sqlite3").is_file()
    assert main(["status", "--json"]) == 0


def test_check_reports_a_missing_file_without_creating_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--json"]) == 1
    assert "does not exist: run `dunning db upgrade`" in capsys.readouterr().out
    assert not (tmp_path / "var").exists()


def test_make_engine_creates_no_folder(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b.sqlite3'}")
    engine.dispose()
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("daemon", [["web", "--port", "1"], ["scheduler"], ["worker"]])
def test_daemons_refuse_an_unmigrated_schema(
    daemon: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = empty_file_url(tmp_path)
    monkeypatch.setenv("DUNNING_DATABASE_URL", url)
    # a broker the worker accepts; nothing connects to it before the database check
    monkeypatch.setenv("DUNNING_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(daemon) == 2
    assert "run `dunning db upgrade`" in one_line(capsys.readouterr().err)
    assert inspect(make_engine(url)).get_table_names() == []  # nothing was migrated


def test_the_console_script_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    # given the real entry point in a fresh process, on an unmigrated database
    env = {"DUNNING_DATABASE_URL": empty_file_url(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "dunning.cli.main", "invoice", "show", "in_1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: the database {env['DUNNING_DATABASE_URL']} has no schema yet: "
        "run `dunning db upgrade`"
    ]
    assert done.stdout == ""
