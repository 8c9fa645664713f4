from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.errors import StoreError
from scheduler.store.sqlite import Store


def test_migrations_run_once_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.sqlite3"
    steps = ["CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1)", "INSERT INTO a VALUES (2)"]
    with Store(path) as store:
        store.migrate("demo", steps[:1])
        store.migrate("demo", steps)
        store.migrate("demo", steps)  # nothing left to do
        assert store.db.execute("SELECT x FROM a ORDER BY x").fetchall() == [(1,), (2,)]
    with Store(path) as store:  # a new process sees the same state
        store.migrate("demo", steps)
        assert store.db.execute("SELECT count(*) FROM a").fetchone() == (2,)
        assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.migrate("demo", ["CREATE TABLE a (x)", "CREATE TABLE b (x)"])
        with pytest.raises(StoreError, match="written by a newer review-scheduler"):
            store.migrate("demo", ["CREATE TABLE a (x)"])


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.migrate("demo", ["CREATE TABLE a (x INTEGER UNIQUE)"])
        with pytest.raises(RuntimeError), store.transaction() as db:
            db.execute("INSERT INTO a VALUES (1)")
            raise RuntimeError("crash in the middle")
        assert store.db.execute("SELECT count(*) FROM a").fetchone() == (0,)


def test_unusable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the state store"):
        Store(blocker / "state.sqlite3")
