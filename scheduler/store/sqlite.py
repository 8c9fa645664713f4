"""The state store: one SQLite file holding everything that must outlive a process.

Each part of the tool that keeps state (the parse cache, the reminder ledger and outbox, the run
history) owns its tables and registers its own numbered schema steps with :meth:`Store.migrate`;
the store applies the missing steps once, in a transaction. The file uses write-ahead logging and
full synchronous commits, so a crash or power cut loses no committed transaction.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from scheduler.errors import StoreError

BUSY_TIMEOUT_MS = 10_000


class Store:
    """An open state store. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit, see transaction().
            self.db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_steps ("
                " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the state store {path}: {exc}") from exc

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything in the block commits together or not at all.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so two processes never interleave
        their read-then-write steps.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def migrate(self, component: str, steps: Sequence[str]) -> None:
        """Bring ``component``'s tables up to date by running its missing schema steps.

        Each step is a script of SQL statements; steps are only ever appended, never edited.
        """
        with self.transaction() as db:
            row = db.execute(
                "SELECT version FROM schema_steps WHERE component = ?", (component,)
            ).fetchone()
            version = row[0] if row else 0
            if version > len(steps):
                raise StoreError(
                    f"the state store {self.path} was written by a newer review-scheduler "
                    f"({component} schema {version}, this version knows {len(steps)})"
                )
            for step in steps[version:]:
                for statement in _statements(step):
                    db.execute(statement)
            db.execute(
                "INSERT INTO schema_steps (component, version) VALUES (?, ?)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, len(steps)),
            )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class StoreLock:
    """An exclusive lock on a state store for one daemon, released by the kernel if the holder
    dies. The lock file beside the store holds the holder's process id, for messages."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        self.path = store_path.with_name(store_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise StoreError(
                f"another review-scheduler daemon{who} is already running on the state store "
                f"{self.store_path}; stop it first, or give this one another [store] path"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> int | None:
        """The process id of the daemon holding the lock, or None when nobody holds it."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_pid(fd) or -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
