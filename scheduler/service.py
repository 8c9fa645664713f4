"""The use cases the command line and the daemon share. No printing, no clock, no exits."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scheduler.config import FieldNames, Settings
from scheduler.errors import ConfigError, UsageError
from scheduler.loader import Discovery, load_document
from scheduler.metadata import ValidatedDocument, check_against_today, validate
from scheduler.problems import Problem, error
from scheduler.report import CheckResult, DocumentReport, FileProblems, ValidationResult
from scheduler.review import ReviewPolicy, State, assess
from scheduler.routing import Router, unowned_problem

log = logging.getLogger(__name__)


def resolve_targets(settings: Settings, targets: Sequence[Path], cwd: Path) -> list[Path]:
    """The paths to search: those given, else the content root. Missing ones are errors."""
    if not targets:
        root = settings.content.root
        if not (cwd / root).is_dir():
            raise ConfigError(
                f"the content root {root} does not exist; set [content] root in the config "
                "or name files and folders on the command line"
            )
        return [root]
    missing = [str(t) for t in targets if not (cwd / t).exists() and not (cwd / t).is_symlink()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    return list(targets)


def iter_documents(
    settings: Settings, targets: Sequence[Path], cwd: Path, today: date
) -> Iterator[ValidatedDocument]:
    """Read and validate every document, one at a time, in path order."""
    discovery = Discovery(
        settings.content.include, settings.content.exclude, settings.content.root, cwd
    )
    for item in discovery.iter_files(resolve_targets(settings, targets, cwd)):
        if isinstance(item, Problem):
            yield ValidatedDocument(item.path, item.path, None, {}, (item,), {})
            continue
        try:
            loaded = load_document(item, settings.content.max_file_bytes)
            checked = validate(loaded, settings.metadata, settings.fields)
        except Exception as exc:  # one broken file must never stop the run
            log.exception("unexpected failure reading %s", item.display)
            problem = error(
                item.display,
                None,
                None,
                f"could not be checked: {exc!r}",
                "this is a bug in review-scheduler; please report it",
            )
            yield ValidatedDocument(item.display, item.rel, None, {}, (problem,), {})
            continue
        yield check_against_today(checked, settings.fields, today)


def validate_files(
    settings: Settings, targets: Sequence[Path], cwd: Path, today: date
) -> ValidationResult:
    files = [
        FileProblems(doc.path, doc.problems)
        for doc in iter_documents(settings, targets, cwd, today)
    ]
    files.sort(key=lambda f: f.path)
    return ValidationResult(today, files)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which documents a report is about. Empty sets select everything."""

    states: frozenset[State] = frozenset()
    editors: frozenset[str] = frozenset()

    def __contains__(self, doc: DocumentReport) -> bool:
        if self.states and doc.state not in self.states:
            return False
        return not self.editors or any(e.casefold() in self.editors for e in doc.editors)


def build_report(
    doc: ValidatedDocument, router: Router, policy: ReviewPolicy, names: FieldNames, today: date
) -> DocumentReport:
    editors, routing_problems = router.route(doc)
    review = assess(doc.metadata, doc.has_errors, today, policy)
    problems = doc.problems + routing_problems
    if not editors and review.state is not State.EXEMPT:
        problems += (unowned_problem(doc, names.owner),)
    meta = doc.metadata
    frequency = doc.fields.get(names.review_frequency)
    return DocumentReport(
        path=doc.path,
        title=meta.title if meta else None,
        state=review.state,
        status=meta.status if meta else None,
        last_reviewed=meta.last_reviewed if meta else None,
        review_frequency=None if frequency is None else str(frequency),
        due=review.due,
        days_until_due=review.days_until_due,
        editors=editors,
        problems=tuple(sorted(problems, key=lambda p: p.sort_key)),
        line=doc.lines.get("last_reviewed"),
        url=meta.url if meta else None,
    )


def check(
    settings: Settings,
    targets: Sequence[Path],
    cwd: Path,
    today: date,
    selection: Selection = Selection(),
) -> CheckResult:
    """The freshness report: every selected document with its state, due date and editors."""
    router = Router(settings.routing, settings.fields.owner)
    policy = ReviewPolicy(
        settings.review.due_soon_days, frozenset(settings.metadata.review_statuses)
    )
    reports = []
    for doc in iter_documents(settings, targets, cwd, today):
        report = build_report(doc, router, policy, settings.fields, today)
        if report in selection:
            reports.append(report)
    reports.sort(key=lambda r: r.urgency)
    return CheckResult(today, settings.review.timezone, settings.review.due_soon_days, reports)
