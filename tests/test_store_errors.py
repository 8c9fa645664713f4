"""Errors a user can fix exit 2 with one line naming the file or variable and what to do, never
3: a store locked beyond the busy timeout, a full disk, unparsable environment variables. (A
read-only store and a damaged one: tests/test_health.py.) And where the log of a real bug goes."""

from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest

from scheduler.commands import main as cli
from scheduler.errors import StoreError
from scheduler.store import sqlite
from scheduler.store.sqlite import SqliteStore

from .test_health import STORE, setup


def test_a_store_locked_beyond_the_busy_timeout_exits_2(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run("send").code == 0
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 1000)
    until = (date.today() + timedelta(days=30)).isoformat()
    holder = sqlite3.connect(tmp_path / STORE, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process writing, and not letting go
        result = run("snooze", "docs/page-0.md", "--until", until, "--reason", "x")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.code == 2
    assert result.err == (
        "review-scheduler: error: the state store .review-scheduler/state.sqlite3: database is "
        "locked: another process held it for longer than 1 s; try again when it has finished "
        "(a long cycle, or a stuck process: see 'review-scheduler status')\n"
    )
    # once the other process lets go, the same command works
    assert run("snooze", "docs/page-0.md", "--until", until, "--reason", "x").code == 0


def test_a_full_database_is_reported_and_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with SqliteStore(path, "state.sqlite3") as store:
        store.runs.last("cycle")  # the tables exist
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow: SQLITE_FULL
        with pytest.raises(StoreError) as caught:
            for _ in range(10_000):
                store.runs.start("cycle", date(2026, 5, 4), datetime.now(UTC))
        message = str(caught.value)
        assert message.startswith("the state store state.sqlite3: database or disk is full: ")
        assert "free space where it is kept" in message
        assert not store.db.in_transaction  # the failed transaction is gone
        kept = store.db.execute("SELECT count(*) FROM runs").fetchone()[0]
        assert 0 < kept < 10_000
        assert store.runs.last("cycle") is not None  # still readable
    with SqliteStore(path, "state.sqlite3") as again:  # and consistent when opened again
        assert again.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert again.db.execute("SELECT count(*) FROM runs").fetchone()[0] == kept


def _limit_file_size() -> None:
    # a disk that fills up at 48 KiB, for this process only (root is bound by it too)
    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))


def test_a_full_disk_exits_2_naming_the_store(tmp_path: Path) -> None:
    env = setup(tmp_path)
    for i in range(2, 40):  # enough documents that the first cycle's writes pass 48 KiB
        (tmp_path / "docs" / f"page-{i}.md").write_text(
            (tmp_path / "docs" / "page-0.md").read_text().replace("editor0", f"editor{i}")
        )
    result = subprocess.run(
        [sys.executable, "-m", "scheduler", "send"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
    )
    assert result.returncode == 2, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "error" in x]
    assert line.startswith("review-scheduler: error: the state store .review-scheduler/state.")
    assert "full" in line or "the disk reported an error" in line
    # nothing half-written: the store opens and checks clean afterwards
    db = sqlite3.connect(tmp_path / STORE)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()


# --------------------------------------------------------------------------- environment variables


def test_an_unparsable_environment_variable_is_named(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHEDULER_ROUTING__DEFAULT", "editor@example.org")  # not JSON
    result = run("check")
    assert result.code == 2
    assert result.err == (
        "review-scheduler: error: environment variable SCHEDULER_ROUTING__DEFAULT: cannot parse "
        "'editor@example.org': a list or table is written as JSON there, e.g. "
        '["a@example.org"] or {"key": "value"}\n'
    )


def test_errors_name_the_variable_a_value_came_from_not_the_file(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(tmp_path, extra='[review]\ntimezone = "Europe/Madrid"')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHEDULER_REVIEW__TIMEZONE", "Mars/Olympus_Mons")
    result = run("status")
    assert result.code == 2
    assert result.err == (
        "review-scheduler: error: invalid configuration:\n"
        "  SCHEDULER_REVIEW__TIMEZONE: [review] timezone: unknown IANA time zone "
        "'Mars/Olympus_Mons'\n"
    )
    monkeypatch.delenv("SCHEDULER_REVIEW__TIMEZONE")
    monkeypatch.setenv("SCHEDULER_SMTP", '{"port": "seven"}')  # a whole section, as JSON
    assert "  SCHEDULER_SMTP: [smtp] port: " in run("status").err
    monkeypatch.delenv("SCHEDULER_SMTP")
    monkeypatch.setenv("SCHEDULER_SMTP__HOST", "mail.example.org")
    monkeypatch.setenv("SCHEDULER_SMTP__SECURITY", "none")
    section = run("status").err  # a rule over two keys: both variables are named
    assert (
        "  config/scheduler.toml with SCHEDULER_SMTP__HOST, SCHEDULER_SMTP__SECURITY: [smtp]: "
        in section
    )


# --------------------------------------------------------------------------- crash logs


def test_crash_logs_go_where_systemd_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.crash_log_folders({"LOGS_DIRECTORY": "/l1:/l2", "STATE_DIRECTORY": "/s"})[:2] == [
        "/l1",
        "/s",
    ]

    @click.command()
    def broken() -> None:
        raise RuntimeError("a bug")

    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setenv("LOGS_DIRECTORY", str(logs))
    assert cli.run(broken, [], "review-scheduler") == 3
    (log,) = logs.iterdir()
    assert "RuntimeError: a bug" in log.read_text()
    assert f"details in {log}" in capsys.readouterr().err
    # a logs folder that cannot be written: the state folder, then the temporary folder
    monkeypatch.setenv("LOGS_DIRECTORY", str(tmp_path / "missing"))
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    assert cli.run(broken, [], "review-scheduler") == 3
    assert len(list(state.iterdir())) == 1
