"""The parse cache: each document's facts, kept in the state store so a run re-reads only files
that changed.

An entry is keyed by the file's path and answers for it while the file's size, modification time
and status-change time are those recorded. Those are not always trustworthy: a file written in
the same moment as it was read, or stamped with a time in the future, could change again without
its times changing (the "racy git" problem). Such entries, and files whose times changed but
whose size did not (a ``touch``, a fresh checkout), are checked against a SHA-256 digest of the
bytes that were read; a file whose digest still matches is not parsed again.

Each entry also holds the document's editors. An entry answers only under what it was read
with: the fingerprint of everything that shapes what it holds (the tool's version, the format of
the facts, the versions of the YAML and validation libraries, and the settings that affect
reading, validation or routing: ``[content] max_file_bytes`` and ``root``, ``[fields]``,
``[metadata]``, ``[routing]``), and the path routing globs saw (for a file outside the content
root, one that depends on the current folder). Each entry carries both, so runs under other
settings, even at the same time, never use each other's entries; when the fingerprint changes,
the entries of any other are dropped. An entry that cannot be decoded is a miss too: its file is
read again and the entry replaced.

The cache is an optimisation: when the store cannot be opened or written, the run goes on without
it and says so once. Its entries live in the state store (:class:`~scheduler.store.CacheStore`);
the rules for using them live here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scheduler import __version__
from scheduler.config import Settings, StoreSettings
from scheduler.content import snapshot
from scheduler.content.facts import FORMAT_VERSION, FactsRecord
from scheduler.content.loader import SourceFile
from scheduler.errors import StoreError
from scheduler.rules import RULES
from scheduler.settings_cache import library_stamps
from scheduler.store import (
    CacheEntry,
    Retimed,
    StateStore,
    location,
    open_read_only,
    open_store,
    store_exists,
)

__all__ = ["RACY_NS", "CacheEntry", "ParseCache", "clear", "fingerprint", "opened"]

log = logging.getLogger(__name__)

# A file changed less than this long before it was read may change again with the same times
# (file systems keep times in steps of up to two seconds); its entry is checked by digest.
RACY_NS = 2_000_000_000
WRITE_BATCH = 5_000


def fingerprint(settings: Settings, cwd: Path) -> str:
    """What the cache's contents depend on besides the files: when it changes, the cache is
    dropped."""
    shaping = {
        "tool": __version__,
        "format": FORMAT_VERSION,
        # the libraries that read and check documents, as installed (without importing them)
        "libraries": library_stamps(("yaml", "pydantic_core")),
        "max_file_bytes": settings.content.max_file_bytes,
        "fields": dataclasses.asdict(settings.fields),  # type: ignore[call-overload]
        "metadata": dataclasses.asdict(settings.metadata),
        "routing": dataclasses.asdict(settings.routing),
        # the time zone timestamps' dates are taken in, and the default frequencies
        "review": {
            "timezone": settings.review.timezone,
            "default_frequency": settings.review.default_frequency,
            "frequencies": [dataclasses.asdict(f) for f in settings.review.frequencies],
        },
        "allowed_domains": settings.mail.allowed_domains,
        "rules": sorted(RULES),  # a new rule may find problems in files read before
        # routing globs are relative to the content root
        "root": os.path.realpath(cwd / settings.content.root),
    }
    return _digest(shaping)


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class ParseCache:
    """The cache as one run uses it. Reads go folder by folder; writes are batched.

    Open with :meth:`open` (or :meth:`off` for a run without a cache) and :meth:`close` at the
    end, which also forgets files and folders that are gone.
    """

    def __init__(
        self,
        store: StateStore | None,
        stamp_ns: int,
        fingerprint: str = "",
        file: Path | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self._store = store
        self._read_only = read_only  # entries are looked up, nothing is written
        self._stamp_ns = stamp_ns
        self._fingerprint = fingerprint
        self.file = file  # the SQLite file the cache is kept in; None in PostgreSQL
        self.sparse = False
        self._malformed = 0
        self._folder: str | None = None
        self._rows: dict[str, CacheEntry] = {}
        self._visited: set[bytes] = set()
        self._upserts: list[tuple[bytes, CacheEntry]] = []
        self._retimed: list[Retimed] = []
        self._deletes: list[tuple[bytes, bytes]] = []

    @classmethod
    def off(cls) -> ParseCache:
        return cls(None, 0)

    @property
    def enabled(self) -> bool:
        """Whether entries are looked up and recorded (not :meth:`off`, no store failure)."""
        return self._store is not None

    @classmethod
    def open(
        cls, settings: StoreSettings, cwd: Path, fingerprint: str, stamp_ns: int
    ) -> ParseCache:
        """The cache in the state store ``settings`` name; without one (and a warning) if it is
        unusable."""
        store = None
        settings = settings.for_cache()
        try:
            # The cache can be rebuilt from the documents: losing its last writes in a power cut
            # is acceptable, a flush to disk on every batch is not needed.
            store = open_store(settings, cwd, durable=False)
            if store.cache.adopt(fingerprint):
                log.info("settings or version changed: the parse cache starts afresh")
        except StoreError as exc:
            log.warning("working without the parse cache: %s", _reason(exc))
            if store is not None:
                store.close()
            return cls.off()
        return cls(store, stamp_ns, fingerprint, sqlite_file(settings, cwd))

    @classmethod
    def looking(
        cls, settings: StoreSettings, cwd: Path, fingerprint: str, stamp_ns: int
    ) -> ParseCache:
        """The cache in the state store ``settings`` name, for looking only: entries are used,
        nothing is written (nor a store created). Without one if there is none (and a warning
        if it cannot be read)."""
        settings = settings.for_cache()
        try:
            if not store_exists(settings, cwd):
                return cls.off()
            store = open_read_only(settings, cwd)
        except StoreError as exc:
            log.warning("working without the parse cache: %s", _reason(exc))
            return cls.off()
        return cls(store, stamp_ns, fingerprint, read_only=True)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def stamp_ns(self) -> int:
        """When the run began (nanoseconds since the epoch): entries it writes say so."""
        return self._stamp_ns

    @property
    def active(self) -> bool:
        """Whether what is stored is kept (there is a store, it has not failed, and it is not
        only looked at)."""
        return self._store is not None and not self._read_only

    # ------------------------------------------------------------------ reading

    def lookup(self, file: SourceFile) -> CacheEntry | None:
        """The entry recorded for ``file`` under this run's settings and with the path routing
        sees for it now, whether or not it still holds; None for any other.

        Entries are read a folder at a time, unless :attr:`sparse` (a run that looks up few
        documents): then one at a time, and files that are gone are not looked for."""
        if self._store is None:
            return None
        if self.sparse:
            return self._lookup_one(file)
        folder, _, name = file.path.rpartition(os.sep)
        if folder != self._folder:
            self._enter(folder)
        entry = self._rows.pop(name, None)
        if entry is None or entry.fingerprint != self._fingerprint or entry.rel != file.rel:
            return None
        return entry

    def _lookup_one(self, file: SourceFile) -> CacheEntry | None:
        assert self._store is not None
        folder, name = _where(file)
        try:
            entries = self._store.cache.folder(folder, name)
        except StoreError as exc:
            self._fail(exc)
            return None
        entry = entries[0] if entries else None
        if entry is None or entry.fingerprint != self._fingerprint or entry.rel != file.rel:
            return None
        return entry

    def reject(self, file: SourceFile) -> None:
        """The entry :meth:`lookup` gave for ``file`` could not be decoded: a miss. (Reading
        the file again replaces it.)"""
        log.debug("the parse cache's entry for %s cannot be decoded", file.display)
        self._malformed += 1

    def holds(self, entry: CacheEntry, file: SourceFile) -> bool:
        """Whether ``entry`` answers for ``file`` without looking at its contents."""
        return (
            entry.size == file.size
            and entry.mtime_ns == file.mtime_ns
            and entry.ctime_ns == file.ctime_ns
            and max(entry.mtime_ns, entry.ctime_ns) < entry.stamp_ns - RACY_NS
        )

    def _enter(self, folder: str) -> None:
        """Load the entries of ``folder``; forget those of the previous folder that are gone."""
        self._leave()
        assert self._store is not None
        self._folder = folder
        key = os.fsencode(folder)
        self._visited.add(key)
        try:
            entries = self._store.cache.folder(key)
        except StoreError as exc:
            self._fail(exc)
            return
        # os.fsdecode's own work, without its Python-level checks: one call per cached file.
        encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
        self._rows = {entry.name.decode(encoding, errors): entry for entry in entries}

    def _leave(self) -> None:
        # Entries not looked up belong to files this run did not reach (another selection of
        # paths) or to files that are gone: only the latter are removed.
        if self._folder is not None and self.active:
            folder = os.fsencode(self._folder)
            for name in self._rows:
                if not os.path.lexists(os.path.join(self._folder, name)):
                    self._deletes.append((folder, os.fsencode(name)))
        self._rows = {}
        self._folder = None

    # ------------------------------------------------------------------ writing

    def forget(self, path: str) -> None:
        """Remove the entry of the file at ``path`` (absolute), if it is gone."""
        if self.active and not os.path.lexists(path):
            folder, _, name = path.rpartition(os.sep)
            self._deletes.append((os.fsencode(folder), os.fsencode(name)))

    def store(self, file: SourceFile, digest: bytes, facts: FactsRecord, route: str) -> None:
        """Record what was read from ``file``."""
        if not self.active:
            return
        folder, name = _where(file)
        entry = CacheEntry(
            name,
            file.size,
            file.mtime_ns,
            file.ctime_ns,
            self._stamp_ns,
            digest,
            self._fingerprint,
            file.rel,
            route,
            facts,
        )
        self._upserts.append((folder, entry))
        self._flush_when_full()

    def confirm(self, file: SourceFile, digest: bytes) -> None:
        """``file``'s times changed but its contents, of ``digest``, did not: the entry holds
        for the new times (if no other run replaced it meanwhile)."""
        if not self.active:
            return
        folder, name = _where(file)
        self._retimed.append(
            Retimed(
                folder,
                name,
                file.size,
                file.mtime_ns,
                file.ctime_ns,
                self._stamp_ns,
                digest,
                self._fingerprint,
            )
        )
        self._flush_when_full()

    def _flush_when_full(self) -> None:
        if len(self._upserts) + len(self._retimed) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> bool:
        """Write what is pending; whether the cache is still in use (a failure ends it)."""
        if self._store is None:
            return False
        try:
            self._store.cache.write(self._upserts, self._retimed, self._deletes)
        except StoreError as exc:
            self._fail(exc)
        self._upserts, self._retimed, self._deletes = [], [], []
        return self._store is not None

    def close(self) -> None:
        """Write what is pending, forget folders that are gone, and close the store."""
        if self._malformed:
            count = self._malformed
            log.warning(
                "%d %s of the parse cache could not be decoded; the documents were read again",
                count,
                "entry" if count == 1 else "entries",
            )
            self._malformed = 0
        if self._store is None:
            return
        if self._read_only:
            self._store.close()
            self._store = None
            return
        self._leave()
        if not self.flush():  # it failed
            return
        try:
            gone = [
                f
                for f in self._store.cache.folders()
                if f not in self._visited and not os.path.isdir(f)
            ]
            if gone:
                self._store.cache.forget_folders(gone)
        except StoreError as exc:
            self._fail(exc)
        if self._store is not None:
            self._store.close()
            self._store = None

    def _fail(self, exc: StoreError) -> None:
        log.warning("working without the parse cache from here on: %s", _reason(exc))
        if self._store is not None:
            self._store.close()
        self._store = None
        self._rows = {}


def sqlite_file(settings: StoreSettings, cwd: Path) -> Path | None:
    """The SQLite file of the store ``settings`` name; None for another kind of store."""
    if not settings.url.startswith("sqlite:"):
        return None
    return cwd / location(settings)


def clear(settings: StoreSettings, cwd: Path) -> int | None:
    """Empty the cache in the state store ``settings`` name (and remove the report snapshot
    kept beside it); the number of entries removed, or ``None`` when there is no store (none
    is created)."""
    settings = settings.for_cache()
    file = sqlite_file(settings, cwd)
    if file is not None:
        snapshot.remove(file)
    if not store_exists(settings, cwd):
        return None
    with open_store(settings, cwd) as store:
        return store.cache.clear()


@contextmanager
def opened(
    settings: Settings, cwd: Path, stamp_ns: int, *, read_only: bool = False
) -> Iterator[ParseCache]:
    """The parse cache in the state store, for a run that started at ``stamp_ns`` (nanoseconds
    since the epoch); closed, with what is pending written, at the end. ``read_only``: for a
    run that writes nothing (see :meth:`ParseCache.looking`)."""
    how = ParseCache.looking if read_only else ParseCache.open
    cache = how(settings.store, cwd, fingerprint(settings, cwd), stamp_ns)
    try:
        yield cache
    finally:
        cache.close()


def _where(file: SourceFile) -> tuple[bytes, bytes]:
    """The folder and the name of ``file`` as the cache keys them: bytes, any name a file
    system allows."""
    folder, _, name = file.path.rpartition(os.sep)
    return os.fsencode(folder), os.fsencode(name)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
