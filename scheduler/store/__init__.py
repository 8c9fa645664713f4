"""The state store: the interfaces the tool uses, and the backends behind them.

``[store] url`` chooses the backend by its scheme; :func:`open_store` opens it. Commands that
only look (``status``, ``preview``, ``send --dry-run``, ``cache clear``) first ask
:func:`store_exists`, so that looking never creates a store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from scheduler.store import sqlite
from scheduler.store.interfaces import (
    Attempt,
    CacheEntry,
    CacheStore,
    Claimed,
    Failing,
    Lease,
    LedgerStore,
    LogEntry,
    LogKind,
    OutboxRow,
    OutboxStatus,
    OutboxStore,
    Queued,
    Recipient,
    Replica,
    ReplicaStore,
    Retimed,
    ReviewLog,
    Run,
    RunHistory,
    RunOutcome,
    Seen,
    Settled,
    SettledStore,
    Snooze,
    SnoozeStore,
    StateStore,
)

if TYPE_CHECKING:
    from scheduler.config import StoreSettings

__all__ = [
    "BACKENDS",
    "Attempt",
    "Backend",
    "CacheEntry",
    "CacheStore",
    "Claimed",
    "Failing",
    "Lease",
    "LedgerStore",
    "LogEntry",
    "LogKind",
    "OutboxRow",
    "OutboxStatus",
    "OutboxStore",
    "Queued",
    "Recipient",
    "Replica",
    "ReplicaStore",
    "Retimed",
    "ReviewLog",
    "Run",
    "RunHistory",
    "RunOutcome",
    "Seen",
    "Settled",
    "SettledStore",
    "Snooze",
    "SnoozeStore",
    "StateStore",
    "check_url",
    "location",
    "open_read_only",
    "open_store",
    "store_exists",
]


class Backend(NamedTuple):
    """A kind of store, named by a URL scheme."""

    # Where the store is, from the URL's part after "scheme://"; ValueError when malformed.
    location: Callable[[str], str]
    exists: Callable[[str, Path, str | None], bool]  # (location, cwd, password)
    open: Callable[[str, Path, bool, str | None], StateStore]  # (location, cwd, durable, password)
    # Open without writing or creating anything (location, cwd); None: ``open`` is used.
    open_read_only: Callable[[str, Path], StateStore] | None = None


def _pg_location(rest: str) -> str:
    from scheduler.store import postgres

    return postgres.location(rest)


def _pg_exists(where: str, cwd: Path, password: str | None) -> bool:
    from scheduler.store import postgres

    return postgres.exists(where, cwd, password)


def _pg_open(where: str, cwd: Path, durable: bool, password: str | None) -> StateStore:
    from scheduler.store import postgres

    return postgres.open_store(where, cwd, durable, password)


# The PostgreSQL backend's module (and its driver) is imported only when such a store is named.
_POSTGRES = Backend(_pg_location, _pg_exists, _pg_open)
BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(sqlite.location, sqlite.exists, sqlite.open_store, sqlite.open_read_only),
    "postgresql": _POSTGRES,
    "postgres": _POSTGRES,
}


def _parse(url: str) -> tuple[Backend, str]:
    scheme, sep, rest = url.partition("://")
    backend = BACKENDS.get(scheme) if sep else None
    if backend is None:
        supported = ", ".join(f"{name}://" for name in BACKENDS)
        what = f"the scheme {scheme!r}" if sep else f"{url!r}"
        raise ValueError(f"{what} is not supported; the supported schemes are: {supported}")
    return backend, backend.location(rest)


def check_url(url: str) -> str:
    """``url`` if it names a store this version can open, else ValueError saying why."""
    _parse(url)
    return url


def location(settings: StoreSettings) -> str:
    """Where the store is, for messages: for SQLite, the file as configured."""
    return _parse(settings.url)[1]


def store_exists(settings: StoreSettings, cwd: Path) -> bool:
    """Whether the store has been created. Relative locations are taken from ``cwd``."""
    backend, where = _parse(settings.url)
    return backend.exists(where, cwd, _password(settings))


def open_store(settings: StoreSettings, cwd: Path, *, durable: bool = True) -> StateStore:
    """Open (creating it if needed) the store ``settings`` name. Relative locations are taken
    from ``cwd``. Without ``durable``, a power cut may cost the last commits (never
    consistency): for a store opened only for the parse cache, which can be rebuilt.

    Raises :class:`~scheduler.errors.StoreError` when the store cannot be opened.
    """
    backend, where = _parse(settings.url)
    return backend.open(where, cwd, durable, _password(settings))


def open_read_only(settings: StoreSettings, cwd: Path) -> StateStore:
    """Open the store ``settings`` name for looking only: nothing is written or created, so
    that it works on a read-only store (file and folder) and never makes one. Ask
    :func:`store_exists` first.

    Raises :class:`~scheduler.errors.StoreError` when the store cannot be read.
    """
    backend, where = _parse(settings.url)
    if backend.open_read_only is None:
        return backend.open(where, cwd, True, _password(settings))
    return backend.open_read_only(where, cwd)


def _password(settings: StoreSettings) -> str | None:
    return settings.password.get_secret_value() if settings.password is not None else None
