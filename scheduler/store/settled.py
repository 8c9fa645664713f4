"""The last settled reminder cycle and the store's generation, as SQL both backends share (see
:class:`~scheduler.store.interfaces.SettledStore`; the tables and the triggers that count
changes are each backend's own schema step)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from scheduler.store.interfaces import Settled

_CURRENT = (
    "SELECT g.n, s.key, s.generation, s.documents, s.outstanding, s.stamp_ns"
    " FROM store_generation AS g LEFT JOIN settled_cycle AS s ON s.id = 1"
)
_RECORD = (
    "INSERT INTO settled_cycle (id, key, generation, documents, outstanding, stamp_ns)"
    " VALUES (1, {0}, {0}, {0}, {0}, {0}) ON CONFLICT (id) DO UPDATE SET key = excluded.key,"
    " generation = excluded.generation, documents = excluded.documents,"
    " outstanding = excluded.outstanding, stamp_ns = excluded.stamp_ns"
)


class _Store(Protocol):
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def transaction(self) -> AbstractContextManager[Any]: ...


class SettledTable:
    """A :class:`~scheduler.store.interfaces.SettledStore` over ``store``, whose driver marks
    parameters with ``marker``."""

    def __init__(self, store: _Store, marker: str) -> None:
        self._store = store
        self._record = _RECORD.format(marker)

    def current(self) -> tuple[int, Settled | None]:
        generation, *last = self._store.query(_CURRENT)[0]
        return generation, Settled(*last) if last[0] is not None else None

    def record(self, settled: Settled) -> None:
        with self._store.transaction() as db:
            db.execute(self._record, tuple(settled))

    def forget(self) -> None:
        with self._store.transaction() as db:
            db.execute("DELETE FROM settled_cycle")
