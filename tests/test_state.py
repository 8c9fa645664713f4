"""The SQLite backend beyond the store contract (tests/test_store_contract.py): schema steps,
transactions, errors, the upgrade of a store written by version 0.1, and ``[store]`` settings."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import Settings, StoreSettings, load_settings, validated
from scheduler.errors import ConfigError, StoreError
from scheduler.notify.email import FileChannel
from scheduler.store import location, open_store, store_exists
from scheduler.store.sqlite import REMINDER_STEPS, SqliteStore

from .conftest import write_doc

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def test_migrations_run_once_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.sqlite3"
    steps = ["CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1)", "INSERT INTO a VALUES (2)"]
    with SqliteStore(path, "s") as store:
        store.migrate("demo", steps[:1])
        store.migrate("demo", steps)
        store.migrate("demo", steps)  # nothing left to do
        assert store.query("SELECT x FROM a ORDER BY x") == [(1,), (2,)]
    with SqliteStore(path, "s") as store:  # a new process sees the same state
        store.migrate("demo", steps)
        assert store.query("SELECT count(*) FROM a") == [(2,)]
        assert store.query("PRAGMA journal_mode") == [("wal",)]
        assert store.query("PRAGMA foreign_keys") == [(1,)]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db", "s.db") as store:
        store.migrate("demo", ["CREATE TABLE a (x)", "CREATE TABLE b (x)"])
        with pytest.raises(StoreError, match="written by a newer review-scheduler"):
            store.migrate("demo", ["CREATE TABLE a (x)"])


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db", "s.db") as store:
        store.migrate("demo", ["CREATE TABLE a (x INTEGER UNIQUE)"])
        with pytest.raises(RuntimeError), store.transaction() as db:
            db.execute("INSERT INTO a VALUES (1)")
            raise RuntimeError("crash in the middle")
        assert store.query("SELECT count(*) FROM a") == [(0,)]


def test_unusable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = write_doc(tmp_path / "file", "not a folder")
    with pytest.raises(StoreError, match="cannot open the state store"):
        SqliteStore(blocker / "state.sqlite3", "state.sqlite3")


def test_sqlite_errors_are_store_errors(tmp_path: Path) -> None:
    garbage = write_doc(tmp_path / "garbage.sqlite3", "this is not SQLite " * 100)
    with pytest.raises(StoreError, match=r"garbage\.sqlite3: file is not a database"):
        SqliteStore(garbage, "garbage.sqlite3")


def test_a_store_of_version_0_1_is_upgraded_and_its_messages_still_go(tmp_path: Path) -> None:
    """Version 0.1 kept finished MIME bytes in the outbox: they are delivered as they are."""
    path = tmp_path / "state.sqlite3"
    mime = b"From: reviews@example.org\r\nTo: ed@example.org\r\nSubject: old\r\n\r\nbody\r\n"
    with SqliteStore(path, "state.sqlite3") as old:
        old.migrate("reminders", REMINDER_STEPS[:1])
        with old.transaction() as db:
            stamp = T0.isoformat(timespec="microseconds")
            for key, status in (("digest:ed@example.org:2026-05-01", "pending"), ("old", "sent")):
                db.execute(
                    "INSERT INTO outbox (key, cycle, recipient, message_id, sender, subject, data,"
                    " status, created_at, window_start, next_attempt_at, attempts, lease_owner,"
                    " lease_until) VALUES (?, '2026-05-01', 'ed@example.org', '<m@example.org>',"
                    " 'reviews@example.org', 'old', ?, ?, ?, ?, ?, 1, 'host:123', ?)",
                    (key, mime, status, stamp, stamp, stamp, stamp),
                )
            db.execute(
                "INSERT INTO outbox_recipients (outbox_id, address, status, code, reply)"
                " VALUES (1, 'ed@example.org', 'pending', 451, 'later'),"
                " (1, 'boss@example.org', 'sent', 250, 'ok'),"
                " (2, 'ed@example.org', 'sent', 250, 'ok')"
            )
            db.execute(
                "INSERT INTO delivery_attempts (outbox_id, at, address, outcome)"
                " VALUES (1, ?, 'ed@example.org', 'temporary')",
                (stamp,),
            )
            db.execute(
                "INSERT INTO reminder_ledger VALUES"
                " ('ed@example.org', 'a.md', '2026-04-01', 'overdue', '2026-05-01')"
            )

    settings = StoreSettings(url=f"sqlite:///{path}")
    with open_store(settings, tmp_path) as store:
        assert [e.path for e in store.ledger.entries()] == ["a.md"]
        assert store.outbox.counts() == {"pending": 1, "sent": 1, "failed": 0, "unconfirmed": 0}
        assert store.outbox.lease_owners() == ["host:123"]
        (claimed,) = store.outbox.claim(
            T0 + timedelta(hours=1), "w", timedelta(minutes=5), 9, channel="email"
        )
        assert claimed.notification.prebuilt == mime
        assert claimed.notification.message_id == "<m@example.org>"
        assert (claimed.attempts, claimed.pending) == (1, ("ed@example.org",))
        results = asyncio.run(
            FileChannel(tmp_path / "out").send(claimed.notification, claimed.pending)
        )
        assert results["ed@example.org"].outcome == "delivered"
    (written,) = (tmp_path / "out").glob("*.eml")
    assert written.read_bytes().endswith(b"\r\n" + mime)  # after the envelope lines, unchanged
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM delivery_attempts").fetchone() == (1,)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


# --------------------------------------------------------------------------- [store] settings


@pytest.mark.parametrize(
    ("given", "url", "where"),
    [
        ({}, "sqlite:///.review-scheduler/state.sqlite3", ".review-scheduler/state.sqlite3"),
        ({"url": "sqlite:////abs/state.db"}, "sqlite:////abs/state.db", "/abs/state.db"),
        ({"url": "sqlite:///rel/state.db"}, "sqlite:///rel/state.db", "rel/state.db"),
        ({"path": "/abs/state.db"}, "sqlite:////abs/state.db", "/abs/state.db"),
        ({"path": "rel/state.db"}, "sqlite:///rel/state.db", "rel/state.db"),
    ],
)
def test_store_url_and_the_older_path(given: dict[str, str], url: str, where: str) -> None:
    settings = validated(Settings, {"store": given}).store
    assert (settings.url, location(settings)) == (url, where)


def test_relative_locations_are_taken_from_the_given_folder(tmp_path: Path) -> None:
    settings = StoreSettings(url="sqlite:///sub/state.sqlite3")
    assert not store_exists(settings, tmp_path)
    with open_store(settings, tmp_path):
        pass
    assert (tmp_path / "sub" / "state.sqlite3").is_file()
    assert store_exists(settings, tmp_path)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[store]\nurl = "mysql://db/reviews"\n',
            "[store] url: the scheme 'mysql' is not supported; the supported schemes are: "
            "sqlite://, postgresql://, postgres://",
        ),
        ('[store]\nurl = "state.sqlite3"\n', "'state.sqlite3' is not supported"),
        ('[store]\nurl = "sqlite://state.sqlite3"\n', "a sqlite URL names a file"),
        (
            '[store]\nurl = "sqlite:///a.db"\npath = "b.db"\n',
            "[store]: url and path are both set",
        ),
    ],
)
def test_bad_store_settings_are_config_errors(tmp_path: Path, toml: str, message: str) -> None:
    config = write_doc(tmp_path / "scheduler.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert message in str(caught.value)
    assert str(config) in str(caught.value)


@pytest.mark.parametrize(
    ("toml", "env", "url"),
    [
        ('path = "file.db"', ("SCHEDULER_STORE__URL", "sqlite:////env.db"), "sqlite:////env.db"),
        ('url = "sqlite:///file.db"', ("SCHEDULER_STORE__PATH", "env.db"), "sqlite:///env.db"),
    ],
)
def test_the_environment_overrides_either_form_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: tuple[str, str], url: str
) -> None:
    config = write_doc(tmp_path / "scheduler.toml", f"[store]\n{toml}\n")
    monkeypatch.setenv(*env)
    assert load_settings(config).store.url == url


def test_store_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_STORE__URL", f"sqlite:///{tmp_path}/env.db")
    assert load_settings(None).store.url == f"sqlite:///{tmp_path}/env.db"
    monkeypatch.delenv("SCHEDULER_STORE__URL")
    monkeypatch.setenv("SCHEDULER_STORE__PATH", "old/env.db")
    assert load_settings(None).store.url == "sqlite:///old/env.db"
    monkeypatch.setenv("SCHEDULER_STORE__URL", "sqlite:///new.db")
    with pytest.raises(ConfigError, match="url and path are both set"):
        load_settings(None)
    monkeypatch.delenv("SCHEDULER_STORE__PATH")
    monkeypatch.setenv("SCHEDULER_STORE__URL", "mysql://db")
    with pytest.raises(
        ConfigError, match=r"SCHEDULER_STORE__URL: \[store\] url: the scheme 'mysql'"
    ):
        load_settings(None)
