"""Checking a library: the freshness report and validation, shared by the commands, reminder
cycles and the daemon. No printing, no clock, no exits."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import signal
import threading
import time
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import partial
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple, Protocol, cast

from scheduler.config import FieldNames, Settings
from scheduler.content.cache import RACY_NS, CacheEntry, ParseCache
from scheduler.content.cache import clear as clear_parse_cache
from scheduler.content.cache import opened as opened_cache
from scheduler.content.facts import DocumentFacts, FactsDecoder, FactsRecord, MalformedRecord
from scheduler.content.loader import Discovery, SourceFile, display_path, missing
from scheduler.content.metadata import future_review_problem
from scheduler.content.reading import (
    Outcome,
    Progress,
    Reader,
    ReadingSettings,
    start_method,
    worker_count,
)
from scheduler.content.snapshot import (
    NEEDS_FACTS,
    Kept,
    Snapshot,
    key_of,
    snapshot_file,
    snapshot_key,
)
from scheduler.errors import ConfigError, UsageError
from scheduler.results import (
    CheckResult,
    DocumentReport,
    EncodedEntries,
    Evidence,
    FileProblems,
    Problem,
    Severity,
    State,
    ValidationResult,
)
from scheduler.review.links import document_links
from scheduler.review.routing import Router, responsibility_problems
from scheduler.review.state import ReviewPolicy, state_on
from scheduler.rule_selection import RuleSelection
from scheduler.settings_cache import code_fingerprint
from scheduler.store import location, open_store, store_exists
from scheduler.text import json_safe, shown, without_surrogates

log = logging.getLogger(__name__)


class CheckStopped(Exception):
    """A check ended early because it was asked to stop (a daemon shutting down)."""


def resolve_targets(settings: Settings, targets: Sequence[Path], cwd: Path) -> list[Path]:
    """The paths to search: those given, else the content root. Missing ones are errors."""
    if not targets:
        root = settings.content.root
        if not (cwd / root).is_dir():
            raise ConfigError(
                f"the content root {display_path(root, cwd)} does not exist; set [content] root "
                "in the config "
                "or name files and folders on the command line"
            )
        return [root]
    absent = [str(t) for t in targets if missing(cwd / t)]
    if absent:
        raise UsageError(f"no such file or folder: {', '.join(absent)}")
    return list(targets)


def discovery_for(settings: Settings, cwd: Path) -> Discovery:
    """How a run finds the documents ``settings`` name, from ``cwd``."""
    content = settings.content
    return Discovery(
        content.include,
        content.exclude,
        content.root,
        cwd,
        gitignore=content.respect_gitignore,
        force_exclude=content.force_exclude,
    )


class Examined(NamedTuple):
    """One document as a run sees it: its facts and who is responsible for it."""

    path: str
    facts: DocumentFacts
    editors: tuple[str, ...]
    routing_problems: tuple[Problem, ...]
    rel: str = ""  # relative to the content root, for per-path rule settings


_Task = tuple[SourceFile, Examined | None]  # a file to read, and what its cache entry says


class Preencoded(NamedTuple):
    """A document whose report entry the parse cache holds written out, less what depends on
    the day and the current folder (see :func:`check`)."""

    path: str
    kind: str  # see _KINDS
    due: int  # its ordinal; 0 for none
    head: str  # the entry's parts, as EntryEncoder.parts gives them
    middle: str
    tail: str
    template: str = ""  # its entry as the report snapshot keeps it, if it does


class EntryEncoder(Protocol):
    """Writes report entries (the JSON renderer's :class:`~scheduler.render.check.JsonEntries`):
    an entry's parts that do not depend on the day, kept in the parse cache; an entry from its
    path and parts as a template for ``%`` with two fields (the state's name, then the day
    count or ``null``), kept in the report snapshot; a whole entry; and what goes between
    entries. Entries and templates are strict UTF-8 (:func:`scheduler.text.json_safe`) when
    the parts are."""

    separator: str

    def parts(self, doc: DocumentReport) -> tuple[str, str, str]: ...

    def template(self, path: str, head: str, middle: str, tail: str) -> str: ...

    def entry(
        self, path: str, head: str, state: str, middle: str, days: int | None, tail: str
    ) -> str: ...


# Between a cached facts record and the report entry's parts kept after it, and between the
# parts: neither occurs in JSON text as the encoders write it (control characters are escaped).
# (Not NUL, which PostgreSQL's text refuses.)
_PARTS = "\n"
_PART = "\x1f"
# "E" exempt, "I" invalid whatever the day, "D" as the due date says; "e" exempt and "i" invalid
# for a review recorded after the day: until that day, with today's date where _DAY stands (the
# date in the error's message).
_KINDS = frozenset({"E", "I", "D", "e", "i"})
_ANY_DAY = frozenset({"E", "I", "D"})
_BEFORE_REVIEW = frozenset({"e", "i"})
_DAY = "\x1d"  # no JSON text holds it


def _seal(record: FactsRecord, parts: str, token: int) -> str:
    return format(zlib.crc32((record + parts).encode(), token), "08x")


# A report with every part an entry can have: what the encoder makes of it seals every kept
# entry, so that entries kept by a version that wrote them otherwise are not used.
_SAMPLE = DocumentReport(
    path="sample.md",
    title="Title \u00e9",
    state=State.OK,
    status="active",
    last_reviewed=date(2026, 1, 2),
    review_frequency="quarterly",
    due=date(2026, 4, 2),
    days_until_due=3,
    editors=("a@example.org", "b@example.org"),
    problems=(Problem("sample.md", 2, "title", Severity.WARNING, "m", "h", "RS1", "r", 4),),
    shown=(("language", "en"), ("tags", ["x"])),
)


class _Encoding:
    """What a run writing the report as encoded entries keeps in, and takes from, the cache."""

    def __init__(
        self,
        encoder: EntryEncoder,
        policy: ReviewPolicy,
        names: FieldNames,
        today: date,
        rules: RuleSelection,
        evidence: Evidence | None,
    ) -> None:
        self.encoder = encoder
        self._args = (policy, names, today, rules)
        self.today = today.toordinal()
        self.snapshots = False  # whether the run keeps a report snapshot
        self._token = zlib.crc32(_PART.join(encoder.parts(_SAMPLE)).encode())
        self.marked = (
            set(evidence.snoozes) | set(evidence.rubber_stamped) if evidence is not None else set()
        )

    def parts(self, record: FactsRecord, doc: Examined) -> str | None:
        """What to keep after ``doc``'s facts record; None when its entry depends on the day
        beyond its state and day count in another way than a review recorded after today
        (an error whose message names today's date, and which ends on the day of the review)."""
        last = doc.facts.last_reviewed
        policy, names, today, rules = self._args
        report = build_report(doc, policy, names, today, rules)
        state = report.state
        kind = "E" if state is State.EXEMPT else "I" if state is State.INVALID else "D"
        written = _PART.join(self.encoder.parts(report))
        if last is not None and last > today:
            written_or_none = self._before_review(doc, report, written)
            if written_or_none is None:
                return None
            written, kind = written_or_none, kind.lower()
        due = report.due.toordinal() if report.due is not None else 0
        last_ordinal = last.toordinal() if last is not None else 0
        parts = json_safe(_PART.join((kind, str(due), str(last_ordinal), written)))
        return _seal(record, parts, self._token) + _PART + parts

    def _before_review(self, doc: Examined, report: DocumentReport, written: str) -> str | None:
        """``written`` (the parts of ``report``, of a review recorded after today) with _DAY
        where today's date stands, if the parts on the day before differ by that date alone."""
        policy, names, today, rules = self._args
        if today == date.min or report.state not in _FIXED.values():
            return None
        before = today - timedelta(days=1)
        other = build_report(doc, policy, names, before, rules)
        shown, shown_before = today.isoformat(), before.isoformat()
        if (
            other.state is not report.state
            or other.due != report.due
            or written.count(shown) != 1
            or written.replace(shown, shown_before) != _PART.join(self.encoder.parts(other))
        ):
            return None
        return written.replace(shown, _DAY)

    def ready(
        self, path: str, record: FactsRecord, kept: str, sealed: bool = False
    ) -> Preencoded | None:
        """The document at ``path`` as ``kept`` (stored after ``record``) has it, or None when
        its entry needs its facts (a review recorded after today, a snooze or rubber stamp).
        Raises :class:`MalformedRecord` for what :meth:`parts` did not write: the record and
        the parts are sealed with a checksum, so that a damaged entry is a miss, as one whose
        record cannot be decoded is. (``sealed``: just written, the checksum is not checked.)"""
        seal, _, kept = kept.partition(_PART)
        try:
            kind, due, last, head, middle, tail = kept.split(_PART)
            due_ordinal, last_ordinal = int(due), int(last)
            sealed = sealed or _seal(record, kept, self._token) == seal
        except (ValueError, UnicodeError):
            raise MalformedRecord("not a report entry's parts") from None
        if not sealed:
            raise MalformedRecord("a report entry's parts that do not match their checksum")
        if kind not in _KINDS or (kind == "D" and not due_ordinal):
            raise MalformedRecord("not a report entry's parts")
        if (last_ordinal > self.today) is (kind in _ANY_DAY):
            return None
        if self.marked and without_surrogates(path) in self.marked:
            return None
        return Preencoded(path, kind, due_ordinal, head, middle, tail)

    def __call__(
        self,
        file: SourceFile,
        record: FactsRecord,
        facts: DocumentFacts,
        editors: tuple[str, ...],
        problems: tuple[Problem, ...],
    ) -> tuple[str | None, Kept | None]:
        """:class:`~scheduler.content.reading.EntryParts`: in the process that read the
        document in ``file`` (whose facts ``record`` encodes), what :meth:`parts` keeps after
        the record, and what the report snapshot keeps (if the run has one)."""
        parts = self.parts(record, Examined(file.display, facts, editors, problems, file.rel))
        if not self.snapshots:
            return parts, None
        unsealed = parts.partition(_PART)[2] if parts is not None else None
        return parts, self.kept(file, file.display, unsealed)

    def kept(self, file: SourceFile, path: str, parts: str | None) -> Kept:
        """What the report snapshot keeps of the document at ``path`` (in ``file``), from the
        ``parts`` :meth:`parts` wrote (less their checksum); None: its entry needs its facts."""
        if parts is None:
            return Kept(key_of(file), path, NEEDS_FACTS, 0, 0, 0, "")
        kind, due, last, head, middle, tail = parts.split(_PART)
        due_ordinal = int(due)
        rank = urgency_number(_FIXED.get(kind, _OK), due_ordinal)
        template = self.encoder.template(path, head, middle, tail)
        return Kept(key_of(file), path, kind, due_ordinal, int(last), rank, template)

    def snapshot(self, cache: ParseCache, cwd: Path, targets: Sequence[Path]) -> Snapshot | None:
        """The report snapshot for this run, beside the parse cache (none without one)."""
        if not cache.active or cache.file is None:
            return None
        key = snapshot_key(
            "check",
            cache.fingerprint,
            self._token,
            os.path.abspath(cwd),  # noqa: PTH100 (not resolved: as the walk names files)
            [os.fspath(target) for target in targets],
            code_fingerprint(),
        )
        file = snapshot_file(cache.file)
        self.snapshots = True
        return Snapshot.open(file, key, cache.stamp_ns, RACY_NS, self.encoder.separator)


@contextmanager
def parse_cache(
    settings: Settings, cwd: Path, now_ns: int, *, read_only: bool = False
) -> Iterator[ParseCache]:
    """The parse cache in the state store for a run that started at ``now_ns`` (nanoseconds
    since the epoch); closed, with what is pending written, at the end. ``read_only``: looked
    at, never written (nor a store created)."""
    with opened_cache(settings, cwd, now_ns, read_only=read_only) as cache:
        yield cache


@contextmanager
def scanning(
    settings: Settings,
    cwd: Path,
    use_cache: bool,
    cache: ParseCache | None = None,
    *,
    read_only: bool = False,
) -> Iterator[ParseCache | None]:
    """The parse cache for one run: ``cache`` when the caller opened one, else (unless
    ``use_cache`` is false) the one in the state store, closed with what is pending written at
    the end (``read_only``: only looked at).

    Meanwhile, cyclic garbage is collected rarely: a run keeps a few small objects per document,
    none in cycles, and with Python's defaults (a collection every 700 allocations) the
    collector would re-examine them over and over, costing more than building them.
    """
    thresholds = gc.get_threshold()
    gc.freeze()  # what is loaded so far is never garbage
    gc.set_threshold(100_000, 50, 100)
    with ExitStack() as stack:
        stack.callback(gc.unfreeze)
        stack.callback(gc.set_threshold, *thresholds)
        if cache is None and use_cache:
            opened = parse_cache(settings, cwd, time.time_ns(), read_only=read_only)
            cache = stack.enter_context(opened)
        yield cache


def examine(
    settings: Settings,
    targets: Sequence[Path],
    cwd: Path,
    *,
    cache: ParseCache | None = None,
    progress: Progress | None = None,
    files: Iterable[SourceFile | Problem] | None = None,
) -> Iterator[Examined]:
    """Every document under ``targets`` with its facts and editors, one at a time; with
    ``files``, those of a walk made already.

    Facts come from ``cache`` where it still answers for a file, else from reading the file (in
    worker processes when many need reading), and are then recorded in ``cache``. An entry that
    cannot be decoded is a miss. Documents come in no particular order: callers sort.
    """
    return cast(
        Iterator[Examined],
        _examined(
            settings, targets, cwd, cache=cache, progress=progress, encoding=None, files=files
        ),
    )


def _examined(
    settings: Settings,
    targets: Sequence[Path],
    cwd: Path,
    *,
    cache: ParseCache | None,
    progress: Progress | None,
    encoding: _Encoding | None,
    snapshot: Snapshot | None = None,
    files: Iterable[SourceFile | Problem] | None = None,
) -> Iterator[Examined | Preencoded]:
    """:func:`examine`; with ``encoding``, documents whose cache entry holds their report
    entry's parts come as those, and the parts of others are kept. With ``snapshot`` (and
    ``encoding``), those it answers for come from it, and it is written anew at the end if
    anything changed."""
    found = resolve_targets(settings, targets, cwd)
    discovery = discovery_for(settings, cwd)
    owner_key = settings.fields.key("owner")
    router = Router(settings.routing, owner_key, settings.mail.allowed_domains)
    decoder = FactsDecoder()
    cache = cache if cache is not None else ParseCache.off()
    workers = worker_count(settings.performance.workers)
    threshold = settings.performance.parallel_threshold

    def answer(file: SourceFile, facts: FactsRecord, route: str) -> Examined:
        shown = file.display
        return Examined(shown, decoder.facts(facts, shown), *decoder.route(route, shown), file.rel)

    def decoded(file: SourceFile, entry: CacheEntry) -> Examined | None:
        try:
            return answer(file, entry.facts.partition(_PARTS)[0], entry.route)
        except MalformedRecord:
            cache.reject(file)
            return None

    def kept(record: FactsRecord, doc: Examined) -> FactsRecord:
        """The record to store for ``doc``: with its report entry's parts when encoding."""
        parts = encoding.parts(record, doc) if encoding is not None and cache.active else None
        return record if parts is None else record + _PARTS + parts

    def preencoded(
        file: SourceFile | None, doc: Examined, record: FactsRecord, stored: FactsRecord
    ) -> Examined | Preencoded:
        """``doc`` as its entry's parts just kept give it, so that its report is not built a
        second time; as it is when there are none. What is kept goes in the report snapshot
        too, for ``file`` (None: it is there already)."""
        if encoding is None:
            return doc
        if stored is record:
            if snapshot is not None and file is not None:  # see _Encoding.parts
                snapshot.keep(file, encoding.kept(file, doc.path, None))
            return doc
        parts = stored[len(record) + 1 :]
        ready = encoding.ready(doc.path, record, parts, sealed=True)
        if snapshot is not None and file is not None:
            kept = encoding.kept(file, doc.path, parts.partition(_PART)[2])
            if snapshot.keep(file, kept) and ready is not None:
                return ready._replace(template=kept.template)
        return ready or doc

    def outcome(file: SourceFile, cached: Examined | None, read: Outcome) -> Examined | Preencoded:
        if read.facts is None:  # the contents are those cached
            assert cached is not None and read.digest is not None
            cache.confirm(file, read.digest)
            return cached
        assert read.route is not None
        made_there = read.parts is not None or read.kept is not None
        if made_there and read.digest is not None and cache.active:
            return made(file, read)
        doc = answer(file, read.facts, read.route)
        if read.digest is None:
            return doc
        stored = kept(read.facts, doc)
        cache.store(file, read.digest, stored, read.route)
        return preencoded(file, doc, read.facts, stored)

    def made(file: SourceFile, read: Outcome) -> Examined | Preencoded:
        """``read``, whose entry's parts the reading process made: stored as they are; its
        facts decoded only when its entry needs them."""
        assert encoding is not None and read.facts is not None and read.route is not None
        assert read.digest is not None
        record, parts = read.facts, read.parts
        cache.store(
            file, read.digest, record if parts is None else record + _PARTS + parts, read.route
        )
        kept = snapshot is not None and read.kept is not None and snapshot.keep(file, read.kept)
        ready = encoding.ready(file.display, record, parts, sealed=True) if parts else None
        if ready is None:
            return answer(file, record, read.route)
        return ready._replace(template=read.kept.template) if kept else ready

    lookup, holds = cache.lookup, cache.holds
    debug = log.isEnabledFor(logging.DEBUG)
    items: Iterator[tuple[SourceFile | Problem, bool]]
    if snapshot is not None:
        assert encoding is not None
        # Documents the snapshot does not answer for are then few: looked up one at a time.
        cache.sparse = snapshot.loaded > 0
        items = _split_unanswered(discovery, found, snapshot, encoding, workers) or _unanswered(
            discovery.iter_files(found), snapshot, encoding
        )
    else:
        walked = discovery.iter_files(found) if files is None else files
        items = ((item, False) for item in walked)
    found_count = unreadable = to_read = 0
    reading = ReadingSettings.of(settings)
    if encoding is not None and cache.active:  # the reading processes make the entries' parts
        reading = replace(reading, entries=encoding)
    with Reader[_Task](reading, workers, threshold, progress) as reader:
        for item, in_snapshot in items:  # the hot loop of every run without a snapshot
            found_count += 1
            if isinstance(item, Problem):
                unreadable += 1
                editors, problems = router.route_owners(item.path, item.path, None, None, {})
                problems += responsibility_problems(item.path, editors, None, (), owner_key)
                yield Examined(
                    item.path, DocumentFacts(problems=(item,)), editors, problems, item.path
                )
                continue
            entry = lookup(item)
            cached: Examined | None = None
            expect = None
            parts = ""
            if encoding is not None and entry is not None and holds(entry, item):
                record, _, parts = entry.facts.partition(_PARTS)
                if parts:
                    try:
                        ready = encoding.ready(item.display, record, parts)
                    except MalformedRecord:
                        ready, parts = None, ""  # its facts still answer: kept again below
                    if snapshot is not None and parts and not in_snapshot:
                        kept_entry = encoding.kept(item, item.display, parts.partition(_PART)[2])
                        if snapshot.keep(item, kept_entry) and ready is not None:
                            ready = ready._replace(template=kept_entry.template)
                    if ready is not None:
                        if debug:
                            log.debug("from the parse cache: %s", shown(item.display))
                        yield ready
                        continue
            if entry is not None and (cached := decoded(item, entry)) is not None:
                if holds(entry, item):
                    if debug:
                        log.debug("from the parse cache: %s", shown(item.display))
                    if encoding is not None and not parts:  # kept by a run of another format
                        stored = kept(record, cached)
                        if stored is not record:
                            cache.store(item, entry.digest, stored, entry.route)
                        yield preencoded(None if in_snapshot else item, cached, record, stored)
                        continue
                    yield cached
                    continue
                if entry.size == item.size:  # the same contents, if the digest still matches
                    expect = entry.digest
            if debug:
                log.debug("reading: %s", shown(item.display))
            to_read += 1
            reader.add((item, cached), item, expect)
            if reader.busy:
                for (file, known), read in reader.ready():
                    yield outcome(file, known, read)
        for (file, known), read in reader.finish():
            yield outcome(file, known, read)
    if snapshot is not None:
        found_count += len(snapshot.listed)
        cache.sparse = False
        if snapshot.index:  # files it held that this run did not meet: changed, or gone
            for path in snapshot.gone():
                cache.forget(path)
        snapshot.save()
    log.info(
        "documents: %d found, %d read, %d from the parse cache%s%s",
        found_count,
        to_read,
        found_count - unreadable - to_read,
        "" if cache.enabled else " (the cache is off)",
        f", {unreadable} could not be listed or opened" if unreadable else "",
    )


def _unanswered(
    items: Iterable[SourceFile | Problem], snapshot: Snapshot, encoding: _Encoding
) -> Iterator[tuple[SourceFile | Problem, bool]]:
    """The files and problems of ``items`` the report snapshot does not answer for, each with
    whether it holds the document's entry all the same (to be built from its facts: a review
    recorded after today, a snooze or a rubber stamp). Those it answers for go to
    :attr:`Snapshot.listed`, and all it holds are taken out of its index. The hot loop of a
    warm run."""
    if not snapshot.index:  # nothing kept (a cold run): nothing to look up
        snapshot.changed = True
        yield from ((item, False) for item in items)
        return
    take, kinds = snapshot.index.pop, snapshot.kinds
    listed, needed = snapshot.listed.append, snapshot.needed.append
    # A review recorded after the day of the run, or a snoozed or rubber-stamped document, needs
    # its facts: checked only when there can be one.
    today = encoding.today
    lasts = snapshot.lasts if snapshot.latest_review > today else None
    marked = encoding.marked
    for item in items:
        if type(item) is not SourceFile:
            yield item, False
        elif (i := take(key_of(item), None)) is None:
            snapshot.changed = True
            yield item, False
        elif (
            (kinds[i] in _BEFORE_REVIEW)
            if lasts is not None and lasts[i] > today
            else (kinds[i] in _ANY_DAY)
        ) and not (marked and without_surrogates(item.display) in marked):
            listed(i)  # its entry comes from the snapshot: see _entries
        else:
            needed(i)
            yield item, True


SPLIT_FROM = 20_000  # documents in the snapshot from which a warm run walks in two processes


def _split_unanswered(
    discovery: Discovery,
    found: list[Path],
    snapshot: Snapshot,
    encoding: _Encoding,
    workers: int,
) -> Iterator[tuple[SourceFile | Problem, bool]] | None:
    """:func:`_unanswered` for a warm run over a large library: the walk of its one folder
    split between this process and a forked one, which sends back what it found (indexes in
    the snapshot, and the few files it does not answer for). None when the run is not of that
    kind; what one process would find when either half follows a link to a folder (the order
    of the walk then matters) or the other process fails."""
    if (
        snapshot.loaded < SPLIT_FROM
        or workers < 2
        or len(found) != 1
        or start_method() != "fork"
        or not os.path.isdir(discovery.absolute(found[0]))  # noqa: PTH112
    ):
        return None
    target = found[0]
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other half
        status = 1
        try:
            os.close(reader)
            others = list(_unanswered(discovery.walk_share(target, 1, 2), snapshot, encoding))
            report = (
                snapshot.listed,
                snapshot.needed,
                others,
                snapshot.changed,
                discovery.followed_links,
            )
            with os.fdopen(writer, "wb") as pipe:
                pickle.dump(report, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    try:
        mine = list(_unanswered(discovery.walk_share(target, 0, 2), snapshot, encoding))
        with os.fdopen(reader, "rb") as pipe:
            sent = pipe.read()
        _, status = os.waitpid(pid, 0)
    except BaseException:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    try:
        if status != 0:
            raise ValueError(f"exit status {status}")
        listed, needed, others, changed, followed = pickle.loads(sent)  # noqa: S301 (our own fork)
    except (ValueError, pickle.UnpicklingError, EOFError) as exc:
        log.debug("the second half of the walk failed (%s): walking it here", exc)
        followed = True
    if followed or discovery.followed_links:
        snapshot.index = dict(zip(snapshot.keys, range(snapshot.loaded), strict=True))
        snapshot.listed.clear()
        snapshot.needed.clear()
        snapshot.changed = False
        discovery.followed_links = False
        return _unanswered(discovery.iter_files(found), snapshot, encoding)
    index, keys = snapshot.index, snapshot.keys
    for i in chain(listed, needed):
        del index[keys[i]]
    snapshot.listed += listed
    snapshot.needed += needed
    snapshot.changed |= changed
    return chain(mine, others)


def validate_files(
    settings: Settings,
    targets: Sequence[Path],
    cwd: Path,
    today: date,
    *,
    use_cache: bool = False,
    cache: ParseCache | None = None,
    progress: Progress | None = None,
    rules: RuleSelection | None = None,
) -> ValidationResult:
    """Every document's problems, the date-dependent ones judged on ``today``: the same ones
    the freshness report gives, less the warnings ``rules`` (default: the settings') switch
    off."""
    names = settings.fields
    rules = rules or rule_selection(settings)
    declared_only = settings.content.scope == "declared"
    files = []
    unscheduled = 0
    with scanning(settings, cwd, use_cache, cache) as cache:
        for doc in examine(settings, targets, cwd, cache=cache, progress=progress):
            facts = doc.facts
            if declared_only and not facts.declared:
                unscheduled += 1
                continue
            problems = facts.problems
            if doc.routing_problems:
                problems = tuple(sorted(problems + doc.routing_problems, key=_SORT_KEY))
            future = future_review_problem(
                doc.path,
                facts.last_reviewed,
                facts.last_reviewed_line,
                names.key("last_reviewed"),
                today,
            )
            if future is not None:
                problems = tuple(sorted((*problems, future), key=lambda p: p.sort_key))
            files.append(FileProblems(doc.path, rules.apply(problems, doc.rel)))
        files.sort(key=lambda f: f.path)
    return ValidationResult(
        today, files, settings.review.timezone, unscheduled if declared_only else None
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """Which documents a report is about. Empty sets select everything."""

    states: frozenset[State] = frozenset()
    editors: frozenset[str] = frozenset()

    def __contains__(self, doc: DocumentReport) -> bool:
        if self.states and doc.state not in self.states:
            return False
        if not self.states and doc.state is State.UNSCHEDULED:
            return False  # counted, and listed only when asked for
        return self.has_editor(doc)

    def has_editor(self, doc: DocumentReport) -> bool:
        return not self.editors or any(e.casefold() in self.editors for e in doc.editors)

    def counts_unlisted(self, doc: DocumentReport) -> bool:
        """Whether ``doc`` is not listed but counted: unscheduled, and not asked for."""
        return doc.state is State.UNSCHEDULED and not self.states and self.has_editor(doc)


def rule_selection(settings: Settings) -> RuleSelection:
    """The warnings the settings report: [metadata] select, ignore and per_path_ignores."""
    meta = settings.metadata
    return RuleSelection.of(meta.select, meta.ignore, meta.per_path_ignores)


def build_report(
    doc: Examined,
    policy: ReviewPolicy,
    names: FieldNames,
    today: date,
    rules: RuleSelection | None = None,
    declared_only: bool = False,
) -> DocumentReport:
    facts = doc.facts
    if declared_only and not facts.declared:
        return _unscheduled(doc)
    problems = facts.problems + doc.routing_problems if doc.routing_problems else facts.problems
    has_errors = facts.has_errors
    last_reviewed = facts.last_reviewed
    if last_reviewed is not None and last_reviewed > today:
        future = future_review_problem(
            doc.path, last_reviewed, facts.last_reviewed_line, names.key("last_reviewed"), today
        )
        assert future is not None
        problems, has_errors = (*problems, future), True
    state, due, days = state_on(facts.due, facts.status, has_errors, today, policy)
    if rules is not None:
        problems = rules.apply(problems, doc.rel)
    if len(problems) > 1:
        problems = tuple(sorted(problems, key=_SORT_KEY))
    return DocumentReport(
        path=doc.path,
        title=facts.title,
        state=state,
        status=facts.status,
        last_reviewed=last_reviewed,
        review_frequency=facts.review_frequency,
        due=due,
        days_until_due=days,
        editors=doc.editors,
        problems=problems,
        line=facts.last_reviewed_line,
        url=facts.url,
        shown=facts.shown,
        source=facts.source,
    )


_SORT_KEY = attrgetter("sort_key")


def _unscheduled(doc: Examined) -> DocumentReport:
    """A document that declares no field it is scheduled by: nothing about it is a problem."""
    facts = doc.facts
    return DocumentReport(
        path=doc.path,
        title=facts.title,
        state=State.UNSCHEDULED,
        status=facts.status,
        last_reviewed=None,
        review_frequency=facts.review_frequency,
        due=None,
        days_until_due=None,
        editors=doc.editors,
        problems=(),
        url=facts.url,
        shown=facts.shown,
        source=facts.source,
    )


def with_evidence(report: DocumentReport, evidence: Evidence) -> DocumentReport:
    path = without_surrogates(report.path)
    snoozed = evidence.snoozes.get(path)
    stamped = report.last_reviewed is not None and (
        evidence.rubber_stamped.get(path) == report.last_reviewed
    )
    if snoozed is None and not stamped:
        return report
    return replace(report, snoozed=snoozed, rubber_stamped=stamped)


def check(
    settings: Settings,
    targets: Sequence[Path],
    cwd: Path,
    today: date,
    selection: Selection = Selection(),
    *,
    use_cache: bool = False,
    cache: ParseCache | None = None,
    progress: Progress | None = None,
    evidence: Evidence | None = None,
    rules: RuleSelection | None = None,
    stop: threading.Event | None = None,
    encoder: EntryEncoder | None = None,
) -> CheckResult:
    """The freshness report: every selected document with its state, due date and editors;
    marked snoozed or rubber-stamped as ``evidence`` says; warnings as ``rules`` (default: the
    settings') select. When ``stop`` is set (from another thread), the check ends early with
    :class:`CheckStopped`.

    With ``encoder``, the report comes as entries it wrote (``CheckResult.encoded``), and the
    parse cache keeps each document's entry less its path, state and day count: a warm run
    then only works out states and day counts from due dates and joins text, building no
    facts or report for a document whose file did not change. (Not for runs with links, the
    declared scope, an --editor filter or rules other than the settings': those build every
    report, as does a document with a snooze, a rubber stamp or a review after ``today``.)"""
    policy = ReviewPolicy(
        settings.review.due_soon_days, frozenset(settings.metadata.review_statuses)
    )
    default_rules = rule_selection(settings)
    rules = rules or default_rules
    linked = settings.links.edit_url is not None or settings.links.view_url is not None
    declared_only = settings.content.scope == "declared"
    if encoder is not None:
        if linked or declared_only or selection.editors or rules != default_rules:
            result = check(
                settings,
                targets,
                cwd,
                today,
                selection,
                use_cache=use_cache,
                cache=cache,
                progress=progress,
                evidence=evidence,
                rules=rules,
            )
            return replace(
                result,
                documents=[],
                encoded=_collected([_encoded(encoder, report) for report in result.documents]),
            )
        encoding = _Encoding(encoder, policy, settings.fields, today, rules, evidence)
        with scanning(settings, cwd, use_cache, cache) as cache:
            snapshot = encoding.snapshot(cache, cwd, targets) if cache is not None else None
            entries = _entries(
                _examined(
                    settings,
                    targets,
                    cwd,
                    cache=cache,
                    progress=progress,
                    encoding=encoding,
                    snapshot=snapshot,
                ),
                encoding,
                selection,
                evidence,
                snapshot,
            )
        return CheckResult(
            today, settings.review.timezone, settings.review.due_soon_days, [], None, entries
        )
    reports = []
    unlisted = 0
    with scanning(settings, cwd, use_cache, cache) as cache:
        for doc in examine(settings, targets, cwd, cache=cache, progress=progress):
            if stop is not None and stop.is_set():
                raise CheckStopped("the check was stopped before it ended")
            report = build_report(doc, policy, settings.fields, today, rules, declared_only)
            if evidence is not None:
                report = with_evidence(report, evidence)
            if linked:
                report = replace(report, links=document_links(settings.links, report.path, cwd))
            if report in selection:
                reports.append(report)
            elif declared_only and selection.counts_unlisted(report):
                unlisted += 1
        reports.sort(key=lambda r: r.urgency)  # still with few collections: see scanning()
    return CheckResult(
        today,
        settings.review.timezone,
        settings.review.due_soon_days,
        reports,
        unlisted if declared_only else None,
    )


_LAST = date.max.toordinal()
_ORDINALS = _LAST + 1
_VALUES = {state: state.value for state in State}
_OVERDUE, _DUE_SOON, _OK = State.OVERDUE, State.DUE_SOON, State.OK
_FIXED = {"E": State.EXEMPT, "I": State.INVALID, "e": State.EXEMPT, "i": State.INVALID}
_RANK = {State.INVALID: 0, State.EXEMPT: 2, State.UNSCHEDULED: 3}  # DocumentReport.urgency


class _Written(NamedTuple):
    """One document's report entry, written out, or how to write it (see :class:`_Pieces`)."""

    state: State
    text: str | Callable[[], str]
    snoozed: bool = False
    rubber_stamped: bool = False


class _Pieces:
    """The report's entries in pieces of text, each given as it is or as how to write it: the
    entries the report snapshot keeps are filled in as the report is written, so that a large
    report is never held whole beside the snapshot. Iterated anew each time."""

    def __init__(self, pieces: list[str | Callable[[], str]]) -> None:
        self._pieces = pieces

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            yield piece if isinstance(piece, str) else piece()

    def __len__(self) -> int:
        return len(self._pieces)


def _fill(template: str, values: tuple[str | int, ...], day: str | None) -> str:
    """``template`` (of one or more entries) filled with ``values``; ``day`` where _DAY
    stands, if given."""
    filled = template % values
    return filled if day is None else filled.replace(_DAY, day)


def _encoded(encoder: EntryEncoder, report: DocumentReport) -> _Written:
    head, middle, tail = encoder.parts(report)
    state = report.state
    entry = encoder.entry(report.path, head, state.value, middle, report.days_until_due, tail)
    return _Written(state, json_safe(entry), report.snoozed is not None, report.rubber_stamped)


def _collected(written: Sequence[_Written]) -> EncodedEntries:
    return EncodedEntries(
        [entry.state for entry in written],
        _Pieces([entry.text for entry in written]),
        sum(entry.snoozed for entry in written),
        sum(entry.rubber_stamped for entry in written),
    )


def _entries(
    documents: Iterator[Examined | Preencoded],
    encoding: _Encoding,
    selection: Selection,
    evidence: Evidence | None,
    snapshot: Snapshot | None = None,
) -> EncodedEntries:
    """The report's entries in report order (``DocumentReport.urgency``): those of
    ``documents``, merged with those the snapshot answered for (as ``documents`` ran)."""
    encoder = encoding.encoder
    policy, names, today, rules = encoding._args
    today_ordinal, today_shown = today.toordinal(), today.isoformat()
    window = policy.due_soon_days
    states = selection.states
    entry = encoder.entry
    # DocumentReport.urgency as one number (rank, then dated first, then the due date's
    # ordinal), and the path: cheaper to build and compare than the four-item key.
    ranked: list[tuple[int, str, _Written]] = []
    add = ranked.append
    for doc in documents:
        if type(doc) is Preencoded:
            path, kind, due, head, middle, tail, template = doc
            days = due - today_ordinal if due else None
            if kind == "D":
                assert days is not None
                state = _OVERDUE if days < 0 else _DUE_SOON if days <= window else _OK
            else:
                state = _FIXED[kind]
            if states and state not in states:
                continue
            day = today_shown if kind in _BEFORE_REVIEW else None
            text: str | Callable[[], str]
            if template:  # kept in the snapshot: filled as the report is written
                values = (_VALUES[state], "null" if days is None else days)
                text = partial(_fill, template, values, day)
            else:
                text = entry(path, head, _VALUES[state], middle, days, tail)
                text = text if day is None else text.replace(_DAY, day)
            add((urgency_number(state, due), path, _Written(state, text)))
            continue
        assert isinstance(doc, Examined)
        report = build_report(doc, policy, names, today, rules)
        if evidence is not None:
            report = with_evidence(report, evidence)
        if report in selection:
            due_ordinal = report.due.toordinal() if report.due is not None else 0
            add((urgency_number(report.state, due_ordinal), report.path, _encoded(encoder, report)))
    ranked.sort()  # still with few collections: see scanning()
    if snapshot is None or not snapshot.listed:
        return _collected([item[2] for item in ranked])
    listed = snapshot.listed
    listed.sort()  # the snapshot's entries are in report order
    if states:
        return _selected(snapshot, ranked, selection, today, window)
    return _filled(snapshot, ranked, today_ordinal, today_shown, window)


def _filled(
    snapshot: Snapshot,
    ranked: list[tuple[int, str, _Written]],
    today: int,
    today_shown: str,
    window: int,
) -> EncodedEntries:
    """The entries the snapshot answered for (:attr:`Snapshot.listed`, sorted), with those of
    ``ranked`` (sorted) where they belong, on the day of ordinal ``today``. The templates of
    consecutive kept entries are filled together, in one ``%``: every one of them at once when
    nothing changed."""
    listed = snapshot.listed
    kinds, dues, text = snapshot.kinds, snapshot.dues, snapshot.text
    states: list[State] = []
    pieces: list[str | Callable[[], str]] = []
    snoozed = stamped = 0

    def fill(low: int, high: int) -> None:
        """The kept entries ``low`` to ``high`` (excluded), which are consecutive: their
        states now, their text as the report is written."""
        values: list[str | int] = []
        state_of, add_values = states.append, values.extend
        for kind, due in zip(kinds[low:high], dues[low:high], strict=True):
            if kind == "D":
                days = due - today
                state = _OVERDUE if days < 0 else _DUE_SOON if days <= window else _OK
                add_values((_VALUES[state], days))
            else:
                state = _FIXED[kind]
                add_values((_VALUES[state], due - today if due else "null"))
            state_of(state)
        if low == 0 and high == len(kinds):  # the whole text
            template = text
        else:
            starts, lengths = snapshot.starts, snapshot.lengths
            template = text[starts[low] : starts[high - 1] + lengths[high - 1]]
        future = any(kind in kinds[low:high] for kind in _BEFORE_REVIEW)
        pieces.append(partial(_fill, template, tuple(values), today_shown if future else None))

    def add(entry: _Written) -> None:
        nonlocal snoozed, stamped
        states.append(entry.state)
        pieces.append(entry.text)
        snoozed += entry.snoozed
        stamped += entry.rubber_stamped

    # Where each entry of ``ranked`` goes: before the kept entry at that position of ``listed``.
    ranks = snapshot.ranks if ranked else []
    paths = snapshot.paths if ranked else []
    cuts = [
        bisect_left(listed, (rank, path), key=lambda i: (ranks[i], paths[i]))
        for rank, path, _ in ranked
    ]
    following = 0  # the next entry of ranked
    first = 0  # where the current run of consecutive kept entries starts in listed
    for position in range(len(listed)):
        if following < len(cuts) and cuts[following] == position:
            if first < position:
                fill(listed[first], listed[position - 1] + 1)
            while following < len(cuts) and cuts[following] == position:
                add(ranked[following][2])
                following += 1
            first = position
        elif position > first and listed[position] != listed[position - 1] + 1:
            fill(listed[first], listed[position - 1] + 1)
            first = position
    if first < len(listed):
        fill(listed[first], listed[-1] + 1)
    for _, _, entry in ranked[following:]:
        add(entry)
    return EncodedEntries(states, _Pieces(pieces), snoozed, stamped)


def _selected(
    snapshot: Snapshot,
    ranked: list[tuple[int, str, _Written]],
    selection: Selection,
    today: date,
    window: int,
) -> EncodedEntries:
    """:func:`_filled` for a report of some states only: entry by entry."""
    today_ordinal, today_shown = today.toordinal(), today.isoformat()
    kinds, dues, template = snapshot.kinds, snapshot.dues, snapshot.template
    ranks, paths = snapshot.ranks, snapshot.paths
    states = selection.states
    written: list[_Written] = []
    out = written.append
    pending = iter(ranked)
    following = next(pending, None)
    for i in snapshot.listed:
        while following is not None and (following[0], following[1]) < (ranks[i], paths[i]):
            out(following[2])
            following = next(pending, None)
        due = dues[i]
        days: int | None = due - today_ordinal if due else None
        if (kind := kinds[i]) == "D":
            assert days is not None
            state = _OVERDUE if days < 0 else _DUE_SOON if days <= window else _OK
        else:
            state = _FIXED[kind]
        if state not in states:
            continue
        values = (_VALUES[state], "null" if days is None else days)
        out(
            _Written(
                state, _fill(template(i), values, today_shown if kind in _BEFORE_REVIEW else None)
            )
        )
    if following is not None:
        out(following[2])
        written.extend(item[2] for item in pending)
    return _collected(written)


def urgency_number(state: State, due: int) -> int:
    """``DocumentReport.urgency`` less the path, for a due date's ordinal (0 for none)."""
    return (_RANK.get(state, 1) * 2 + (0 if due else 1)) * _ORDINALS + (due or _LAST)


@dataclass(frozen=True, slots=True)
class CacheCleared:
    """What ``cache clear`` did."""

    location: str  # the store, for messages
    removed: int | None  # documents forgotten; None when there is no store


def clear_cache(settings: Settings, cwd: Path) -> CacheCleared:
    """Empty the parse cache, so that the next run reads every document (and forget the last
    settled cycle, so that the next cycle does too: see :mod:`scheduler.usecases.settled`)."""
    cache = settings.store.for_cache()
    removed = clear_parse_cache(settings.store, cwd)
    if store_exists(settings.store, cwd):
        with open_store(settings.store, cwd) as store:
            store.settled.forget()
    return CacheCleared(location(cache), removed)
