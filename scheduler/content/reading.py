"""Reading the documents the cache cannot answer for: in this process, or in a pool of worker
processes when there are many.

Each file is loaded, validated and routed, and comes back as one encoded record (see
:mod:`scheduler.content.facts`); a file whose digest matches the one the cache holds comes back
as "unchanged" without being parsed. Work goes to the workers in chunks, a bounded number at a
time, and results come back in the order the files were handed in, whatever the number of
workers. Workers never touch the state
store: the main process records what they read.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

from scheduler import rules
from scheduler.config import (
    FieldNames,
    MetadataRules,
    ReviewSettings,
    RoutingSettings,
    Settings,
)
from scheduler.content.facts import (
    DocumentFacts,
    FactsRecord,
    encode_facts,
    establish,
    route_text,
)
from scheduler.content.loader import SourceFile, head_digest, load_document
from scheduler.content.metadata import validate
from scheduler.results import Problem
from scheduler.review.routing import Router, responsibility_problems

if TYPE_CHECKING:  # multiprocessing is imported when a pool starts: most runs need none
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

CHUNK = 250  # documents per piece of work sent to a worker
_ROUTES_KEPT = 1024  # route texts kept per process: a library has few lists of editors


class Progress(Protocol):
    """Told how many documents there are to read, and how many have been read."""

    def expect(self, count: int) -> None: ...

    def advance(self, count: int) -> None: ...


class Outcome(NamedTuple):
    """What reading one file gave: its facts and its editors (see :mod:`scheduler.content.facts`).
    ``facts`` is ``None`` when its digest matched the one expected; ``digest`` is ``None`` when
    the result must not be cached (the file could not be read)."""

    digest: bytes | None
    facts: FactsRecord | None = None
    route: str | None = None
    # What ReadingSettings.entries made of it, if anything: see EntryParts.
    parts: str | None = None
    kept: Any = None


class EntryParts(Protocol):
    """Makes, in the process that read a document, what a report keeps of it beside its facts
    record (a JSON report's entry written out, and what the report snapshot keeps: see
    :mod:`scheduler.usecases.check`), so that the main process stores it rather than decoding
    the record again to build it. Sent to worker processes: picklable."""

    def __call__(
        self,
        file: SourceFile,
        record: FactsRecord,
        facts: DocumentFacts,
        editors: tuple[str, ...],
        problems: tuple[Problem, ...],
    ) -> tuple[str | None, Any]: ...


@dataclass(frozen=True, slots=True)
class ReadingSettings:
    """The settings reading a document depends on, and nothing else: this is all that is sent
    to worker processes (never the mail server's password, say)."""

    max_file_bytes: int
    rules: MetadataRules
    names: FieldNames
    routing: RoutingSettings
    review: ReviewSettings  # the time zone of timestamps, default frequencies
    allowed_domains: tuple[str, ...] = ()  # [mail] allowed_domains, for owners
    entries: EntryParts | None = None  # what to make beside each document's facts

    @classmethod
    def of(cls, settings: Settings) -> ReadingSettings:
        return cls(
            max_file_bytes=settings.content.max_file_bytes,
            rules=settings.metadata,
            names=settings.fields,
            routing=settings.routing,
            review=settings.review,
            allowed_domains=settings.mail.allowed_domains,
        )


class _Context:
    """Everything needed to read a document, built once per process."""

    def __init__(self, settings: ReadingSettings) -> None:
        self.max_bytes = settings.max_file_bytes
        self.rules = settings.rules
        self.names = settings.names
        self.review = settings.review
        self.router = Router(
            settings.routing, settings.names.key("owner"), settings.allowed_domains
        )
        self._routes: dict[tuple[str, ...], str] = {}  # editors -> route text, without problems
        self.entries = settings.entries

    def route_text(self, editors: tuple[str, ...], problems: tuple[Problem, ...]) -> str:
        """:func:`route_text`, written once per list of editors when there are no problems."""
        if problems:
            return route_text(editors, problems)
        text = self._routes.get(editors)
        if text is None:
            if len(self._routes) >= _ROUTES_KEPT:
                self._routes.clear()
            text = self._routes[editors] = route_text(editors, ())
        return text

    def unowned(
        self, path: str, editors: tuple[str, ...], status: str | None
    ) -> tuple[Problem, ...]:
        owner_key = self.names.key("owner")
        return responsibility_problems(path, editors, status, self.rules.review_statuses, owner_key)

    def read(self, file: SourceFile, expect: bytes | None) -> Outcome:
        try:
            if expect is not None and head_digest(file, self.max_bytes) == expect:
                return Outcome(expect)
            loaded = load_document(file, self.max_bytes)
            validated = validate(loaded, self.rules, self.names, self.review)
            facts = establish(validated, self.names)
            editors, problems = self.router.route(validated)
            problems += self.unowned(file.display, editors, facts.status)
            if validated.silenced:
                problems = tuple(
                    p for p in problems if p.is_error or p.code not in validated.silenced
                )
            record = encode_facts(facts)
            route = self.route_text(editors, problems)
            if self.entries is None:
                return Outcome(loaded.digest, record, route)
            return Outcome(
                loaded.digest, record, route, *self.entries(file, record, facts, editors, problems)
            )
        except Exception as exc:  # one broken file must never stop the run
            log.exception("unexpected failure reading %s", file.display)
            return self.failed(
                file,
                rules.INTERNAL_ERROR(
                    file.display,
                    None,
                    None,
                    f"could not be checked: {exc!r}",
                    "this is a bug in review-scheduler; please report it",
                ),
            )

    def failed(self, file: SourceFile, problem: Problem) -> Outcome:
        """The outcome of a file that could not be read, with ``problem``; never cached."""
        editors, problems = self.router.route_owners(file.display, file.rel, None, None, {})
        problems += self.unowned(file.display, editors, None)
        return Outcome(
            None, encode_facts(DocumentFacts(problems=(problem,))), route_text(editors, problems)
        )


_WORKER: _Context | None = None


def _start_worker(settings: ReadingSettings) -> None:
    global _WORKER
    _WORKER = _Context(settings)
    _exit_with_parent()


def _exit_with_parent() -> None:
    """End this worker as soon as the process that started it is gone.

    Between pieces of work a worker waits for the next one; if the main process is killed
    (``kill -9``), nothing would ever tell it to stop, and it would hold on to stdout (so a
    pipe reading the report never ends) and to the files of the state store. A thread waits
    on the parent's sentinel, which becomes ready when the parent exits however it exits.
    """
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)  # nobody is left to read what this worker would say

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _read_chunk(work: list[tuple[SourceFile, bytes | None]]) -> list[Outcome]:
    assert _WORKER is not None, "worker process started without its settings"
    return [_WORKER.read(file, expect) for file, expect in work]


def worker_count(configured: int) -> int:
    """``[performance] workers``, where 0 means one per core this process may use."""
    if configured:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


T = TypeVar("T")


@dataclass(slots=True)
class _Piece(Generic[T]):
    tasks: list[T]
    work: list[tuple[SourceFile, bytes | None]]
    future: Future[list[Outcome]] | None = None
    outcomes: list[Outcome] | None = None
    pool: ProcessPoolExecutor | None = None  # the pool the future belongs to
    # Its outcomes can be taken without waiting: set here, or by the pool's thread when the
    # future is done (a plain attribute: cheaper to look at than asking the future).
    done: bool = False

    def finished(self, future: Future[list[Outcome]]) -> None:
        self.done = True


class Reader(Generic[T]):
    """Reads files handed in with :meth:`add`, yielding ``(task, outcome)`` pairs in the order
    they were added from :meth:`ready` (whatever is done) and :meth:`finish` (the rest).

    Up to ``threshold`` files are held back; if no more come, they are read in this process,
    where starting workers would cost more than it saves. From the ``threshold``-th file on,
    files go to ``workers`` worker processes in chunks (or, with one worker, are read here as
    they come). ``task`` is the caller's own record of each file and never leaves this process.

    When a worker process dies (killed, out of memory), the pool is replaced and the files of
    every piece it was reading are read again, each on its own; a file whose worker dies again
    gets a ``worker-died`` problem, and the run goes on.
    """

    def __init__(
        self,
        settings: ReadingSettings,
        workers: int,
        threshold: int,
        progress: Progress | None = None,
    ) -> None:
        self._settings = settings
        self._workers = workers
        self._threshold = threshold
        self._progress = progress
        self._context: _Context | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._streaming = False  # past the threshold: work is no longer held back
        self._held: _Piece[T] = _Piece([], [])
        self._pieces: deque[_Piece[T]] = deque()  # in order; done ones until they are taken
        self._in_flight = 0
        self._max_in_flight = 3 * max(workers, 1)

    def __enter__(self) -> Reader[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def add(self, task: T, file: SourceFile, expect: bytes | None) -> None:
        self._held.tasks.append(task)
        self._held.work.append((file, expect))
        if not self._streaming and len(self._held.tasks) >= self._threshold:
            self._streaming = True
            if self._workers > 1:
                log.info("reading documents in %d worker processes", self._workers)
                self._pool = self._new_pool()
            self._dispatch()  # with a pool, this starts the workers
        elif self._streaming and len(self._held.tasks) >= CHUNK:
            self._dispatch()
        # Only now, after any worker has started: a progress display runs a thread, and a
        # process should not fork while other threads may hold locks.
        if self._progress is not None:
            self._progress.expect(1)

    @property
    def busy(self) -> bool:
        """Whether results are on their way (so :meth:`ready` may have some)."""
        return bool(self._pieces)

    def ready(self) -> Iterable[tuple[T, Outcome]]:
        """Results that are done, without waiting. (Asked after every file added: when the
        oldest piece is not done, which is most of the time, this costs two attribute reads.)"""
        if not (self._pieces and self._pieces[0].done):
            return ()
        return self._ready()

    def _ready(self) -> Iterator[tuple[T, Outcome]]:
        while self._pieces and self._pieces[0].done:
            yield from self._take()

    def finish(self) -> Iterator[tuple[T, Outcome]]:
        """Every remaining result, waiting for them."""
        if self._held.tasks:
            self._dispatch()
        while self._pieces:
            yield from self._take()

    def _dispatch(self) -> None:
        """Send the held files off in chunks (or read them here without a pool)."""
        held, self._held = self._held, _Piece([], [])
        for start in range(0, len(held.tasks), CHUNK):
            piece = _Piece(held.tasks[start : start + CHUNK], held.work[start : start + CHUNK])
            while self._in_flight >= self._max_in_flight:  # bounded: wait for the oldest
                self._wait(next(p for p in self._pieces if p.future is not None))
            if self._pool is not None:
                piece.pool, piece.future = self._submit(piece.work)
                piece.future.add_done_callback(piece.finished)
                self._in_flight += 1
            else:
                piece.outcomes = [self._here().read(f, expect) for f, expect in piece.work]
                piece.done = True
                if self._progress is not None:
                    self._progress.advance(len(piece.work))
            self._pieces.append(piece)

    def _here(self) -> _Context:
        """Reading in this process."""
        if self._context is None:
            self._context = _Context(self._settings)
        return self._context

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context(start_method()),
            initializer=_start_worker,
            initargs=(self._settings,),
        )

    def _submit(
        self, work: list[tuple[SourceFile, bytes | None]]
    ) -> tuple[ProcessPoolExecutor, Future[list[Outcome]]]:
        """Send ``work`` to the pool, replacing the pool first if a worker of it has died."""
        assert self._pool is not None
        try:
            return self._pool, self._pool.submit(_read_chunk, work)
        except BrokenExecutor:  # BrokenProcessPool
            self._replace_pool(self._pool)
            assert self._pool is not None
            return self._pool, self._pool.submit(_read_chunk, work)

    def _replace_pool(self, broken: ProcessPoolExecutor | None) -> None:
        """A new pool for the ``broken`` one, unless that was done already."""
        if broken is self._pool and self._pool is not None:
            log.warning("a worker process died; reading its documents again")
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = self._new_pool()

    def _wait(self, piece: _Piece[T]) -> None:
        if piece.outcomes is None:
            assert piece.future is not None
            try:
                piece.outcomes = piece.future.result()
            except BrokenExecutor:  # BrokenProcessPool
                self._replace_pool(piece.pool)
                piece.outcomes = [self._read_alone(file, expect) for file, expect in piece.work]
            piece.future = piece.pool = None
            piece.done = True
            self._in_flight -= 1
            if self._progress is not None:
                self._progress.advance(len(piece.work))

    def _read_alone(self, file: SourceFile, expect: bytes | None) -> Outcome:
        """Read one file whose worker died, in a worker of its own: if that one dies too, the
        file gets a problem (reading it here could take this process down with it)."""
        pool, future = self._submit([(file, expect)])
        try:
            return future.result()[0]
        except BrokenExecutor:  # BrokenProcessPool
            self._replace_pool(pool)
            log.error("the worker process reading %s died, twice", file.display)
            problem = rules.WORKER_DIED(
                file.display,
                None,
                None,
                "could not be checked: the process reading it died, twice",
                "check the file, and the memory and process limits of the machine",
            )
            return self._here().failed(file, problem)

    def _take(self) -> Iterator[tuple[T, Outcome]]:
        piece = self._pieces[0]
        self._wait(piece)
        self._pieces.popleft()
        assert piece.outcomes is not None
        yield from zip(piece.tasks, piece.outcomes, strict=True)


def start_method() -> str:
    """How to start workers. Forked ones start at once and share this process's memory until
    they write to it; but a process with other threads (the daemon's scheduler) must not fork,
    as a lock another thread holds would stay locked in the child for ever. There, and where
    forking is unsafe or missing (macOS, Windows), workers start from a fresh interpreter."""
    if sys.platform != "linux":
        return "spawn"
    return "fork" if threading.active_count() == 1 else "forkserver"
