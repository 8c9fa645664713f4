"""Checking a library: the freshness report and validation, shared by the commands, reminder
cycles and the daemon. No printing, no clock, no exits."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import date
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from scheduler.config import FieldNames, Settings
from scheduler.content.cache import CacheEntry, ParseCache
from scheduler.content.cache import clear as clear_parse_cache
from scheduler.content.cache import opened as opened_cache
from scheduler.content.facts import DocumentFacts, FactsDecoder, FactsRecord, MalformedRecord
from scheduler.content.loader import Discovery, SourceFile, display_path, missing
from scheduler.content.metadata import future_review_problem
from scheduler.content.reading import Outcome, Progress, Reader, ReadingSettings, worker_count
from scheduler.errors import ConfigError, UsageError
from scheduler.results import (
    CheckResult,
    DocumentReport,
    Evidence,
    FileProblems,
    Problem,
    State,
    ValidationResult,
)
from scheduler.review.links import document_links
from scheduler.review.routing import Router, responsibility_problems
from scheduler.review.state import ReviewPolicy, state_on
from scheduler.rule_selection import RuleSelection
from scheduler.store import location
from scheduler.text import shown, without_surrogates

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


class Examined(NamedTuple):
    """One document as a run sees it: its facts and who is responsible for it."""

    path: str
    facts: DocumentFacts
    editors: tuple[str, ...]
    routing_problems: tuple[Problem, ...]
    rel: str = ""  # relative to the content root, for per-path rule settings


_Task = tuple[SourceFile, Examined | None]  # a file to read, and what its cache entry says


@contextmanager
def parse_cache(settings: Settings, cwd: Path, now_ns: int) -> Iterator[ParseCache]:
    """The parse cache in the state store for a run that started at ``now_ns`` (nanoseconds
    since the epoch); closed, with what is pending written, at the end."""
    with opened_cache(settings, cwd, now_ns) as cache:
        yield cache


@contextmanager
def scanning(
    settings: Settings, cwd: Path, use_cache: bool, cache: ParseCache | None = None
) -> Iterator[ParseCache | None]:
    """The parse cache for one run: ``cache`` when the caller opened one, else (unless
    ``use_cache`` is false) the one in the state store, closed with what is pending written at
    the end.

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
            cache = stack.enter_context(parse_cache(settings, cwd, time.time_ns()))
        yield cache


def examine(
    settings: Settings,
    targets: Sequence[Path],
    cwd: Path,
    *,
    cache: ParseCache | None = None,
    progress: Progress | None = None,
) -> Iterator[Examined]:
    """Every document under ``targets`` with its facts and editors, one at a time.

    Facts come from ``cache`` where it still answers for a file, else from reading the file (in
    worker processes when many need reading), and are then recorded in ``cache``. An entry that
    cannot be decoded is a miss. Documents come in no particular order: callers sort.
    """
    found = resolve_targets(settings, targets, cwd)
    content = settings.content
    discovery = Discovery(
        content.include,
        content.exclude,
        content.root,
        cwd,
        gitignore=content.respect_gitignore,
        force_exclude=content.force_exclude,
    )
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
            return answer(file, entry.facts, entry.route)
        except MalformedRecord:
            cache.reject(file)
            return None

    def outcome(file: SourceFile, cached: Examined | None, read: Outcome) -> Examined:
        if read.facts is None:  # the contents are those cached
            assert cached is not None and read.digest is not None
            cache.confirm(file, read.digest)
            return cached
        assert read.route is not None
        if read.digest is not None:
            cache.store(file, read.digest, read.facts, read.route)
        return answer(file, read.facts, read.route)

    lookup, holds = cache.lookup, cache.holds
    debug = log.isEnabledFor(logging.DEBUG)
    found_count = unreadable = to_read = 0
    with Reader[_Task](ReadingSettings.of(settings), workers, threshold, progress) as reader:
        for item in discovery.iter_files(found):  # the hot loop of every run
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
            if entry is not None and (cached := decoded(item, entry)) is not None:
                if holds(entry, item):
                    if debug:
                        log.debug("from the parse cache: %s", shown(item.display))
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
    log.info(
        "documents: %d found, %d read, %d from the parse cache%s%s",
        found_count,
        to_read,
        found_count - unreadable - to_read,
        "" if cache.enabled else " (the cache is off)",
        f", {unreadable} could not be listed or opened" if unreadable else "",
    )


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
) -> CheckResult:
    """The freshness report: every selected document with its state, due date and editors;
    marked snoozed or rubber-stamped as ``evidence`` says; warnings as ``rules`` (default: the
    settings') select. When ``stop`` is set (from another thread), the check ends early with
    :class:`CheckStopped`."""
    policy = ReviewPolicy(
        settings.review.due_soon_days, frozenset(settings.metadata.review_statuses)
    )
    rules = rules or rule_selection(settings)
    linked = settings.links.edit_url is not None or settings.links.view_url is not None
    declared_only = settings.content.scope == "declared"
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
                report = replace(report, links=document_links(settings.links, report.path))
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


@dataclass(frozen=True, slots=True)
class CacheCleared:
    """What ``cache clear`` did."""

    location: str  # the store, for messages
    removed: int | None  # documents forgotten; None when there is no store


def clear_cache(settings: Settings, cwd: Path) -> CacheCleared:
    """Empty the parse cache, so that the next run reads every document."""
    cache = settings.store.for_cache()
    return CacheCleared(location(cache), clear_parse_cache(settings.store, cwd))
