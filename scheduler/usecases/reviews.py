"""Closing the loop: recording reviews, snoozing reminders, and the review history.

What the commands ``mark-reviewed``, ``snooze`` and ``history`` call. Documents are written only
through :mod:`scheduler.content.editing`; every review and snooze goes to the review log in the
state store. Nothing here prints, reads the clock or exits.
"""

from __future__ import annotations

import difflib
import glob
import hashlib
import logging
import os
import stat
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from scheduler.config import Settings
from scheduler.content.cadence import Cadence
from scheduler.content.editing import (
    Edited,
    Refused,
    read_frontmatter,
    set_date,
    write_atomically,
)
from scheduler.content.fields import cadence, calendar_date, explained, iso_date
from scheduler.content.loader import UNREAD, display_path
from scheduler.content.metadata import ParsingRules
from scheduler.content.schedule import Frequencies
from scheduler.errors import SchedulerError, StoreError, UsageError
from scheduler.notify.reminders import OUTSTANDING
from scheduler.results import DocumentReport, Evidence, Snoozed, State
from scheduler.store import (
    LogEntry,
    LogKind,
    Seen,
    Snooze,
    StateStore,
    open_read_only,
    open_store,
    store_exists,
)
from scheduler.text import without_surrogates

log = logging.getLogger(__name__)

OUTCOMES = ("no-change", "minor", "major")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Target:
    """A document named on the command line: where it is, and how reports name it."""

    path: Path  # the file to write: symbolic links resolved
    shown: str


@dataclass(frozen=True, slots=True)
class Refusal:
    shown: str
    reason: str


@dataclass(frozen=True, slots=True)
class Change:
    """A document whose last-reviewed date was (or, in a dry run, would be) set."""

    shown: str
    old_date: date | None
    new_date: date
    diff: str  # unified diff of the change
    next_due: date | None = None  # the next-review date set, on a page scheduled by one


@dataclass(frozen=True, slots=True)
class MarkResult:
    changes: list[Change]
    refused: list[Refusal]
    dry_run: bool
    commit: str | None = None  # the commit made with --commit


def targets(
    settings: Settings, names: Sequence[str], cwd: Path
) -> tuple[list[Target], list[Refusal]]:
    """The documents ``names`` (paths or globs) stand for, each once, and those refused: missing,
    not a regular file, or (links resolved) outside the content root."""
    root = os.path.realpath(cwd / settings.content.root)
    found: dict[Path, Target] = {}
    refused: list[Refusal] = []
    for name in names:
        if _GLOB_CHARS & set(name):
            # a pattern as a shell takes it, relative or absolute (Path.glob refuses absolute)
            matches = sorted(glob.glob(name, root_dir=cwd, recursive=True))  # noqa: PTH207
            if not matches:
                refused.append(Refusal(name, "matches no file"))
        else:
            matches = [name]
        for match in matches:
            if match != name and (cwd / match).is_dir():
                continue  # a folder a glob matched: not a document
            shown = without_surrogates(display_path(Path(match), cwd))
            real = Path(os.path.realpath(cwd / match))
            problem = _unwritable(cwd / match, real, root, settings.content.root)
            if problem is not None:
                refused.append(Refusal(shown, problem))
            elif real not in found:
                found[real] = Target(real, shown)
    return list(found.values()), refused


def _unwritable(given: Path, real: Path, root: str, root_shown: Path) -> str | None:
    if not os.path.lexists(given):
        return "no such file"
    if os.path.commonpath([root, str(real)]) != root:
        link = " through a symbolic link" if given.is_symlink() else ""
        return f"is outside the content root {root_shown}{link}; it is not changed"
    try:
        mode = real.stat().st_mode
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if stat.S_ISDIR(mode):
        return "is a folder: name documents, or a glob such as 'folder/**/*.md'"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def mark_reviewed(
    settings: Settings,
    cwd: Path,
    names: Sequence[str],
    today: date,
    now: datetime,
    *,
    day: date | None = None,
    editor: str | None = None,
    outcome: str | None = None,
    note: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    commit: bool = False,
) -> MarkResult:
    """Set the last-reviewed date of each document to ``day`` (default ``today``), changing no
    other byte, and log each review. Documents that cannot be changed safely are refused; the
    others are changed all the same."""
    reviewed_on = day or today
    if reviewed_on > today:
        raise UsageError(f"{reviewed_on} is in the future (today is {today})")
    if outcome is not None and outcome not in OUTCOMES:
        raise UsageError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if commit and not dry_run:
        _check_git(cwd)
    found, refused = targets(settings, names, cwd)
    key = settings.fields.key("last_reviewed")
    due_key = settings.fields.key("review_by")
    edits: list[tuple[Target, bytes, Edited]] = []
    for target in found:
        read = _edit(settings, cwd, target, key, reviewed_on, force)
        if isinstance(read, Refused):
            refused.append(Refusal(target.shown, read.reason))
        else:
            edits.append((target, *read))
    if dry_run or not edits:
        changes = [_change(target, old, edit, reviewed_on, settings) for target, old, edit in edits]
        return MarkResult(changes, refused, dry_run)
    changes, written = [], []
    with open_store(settings.store, cwd) as store:
        seen = store.reviews.seen()
        entries, now_seen = [], []
        for target, old, edit in edits:
            try:
                if target.path.read_bytes() != old:
                    refused.append(Refusal(target.shown, "changed while it was being edited"))
                    continue
                write_atomically(target.path, edit.data)
            except OSError as exc:
                refused.append(Refusal(target.shown, f"cannot be written: {exc.strerror}"))
                continue
            change = _change(target, old, edit, reviewed_on, settings)
            changes.append(change)
            written.append(target.path)
            content = content_digest(old, key, change.shown, due_key)  # as the new one's
            entries.append(
                LogEntry(
                    change.shown,
                    LogKind.REVIEWED,
                    now,
                    editor,
                    change.old_date,
                    change.new_date,
                    outcome,
                    note,
                    content_changed=_changed(seen.get(change.shown), content),
                )
            )
            now_seen.append(Seen(change.shown, change.new_date, content))
        store.reviews.observe(now_seen, entries)
    made = _commit(cwd, written, changes, editor, outcome) if commit and written else None
    return MarkResult(changes, refused, dry_run, made)


def _change(
    target: Target, old: bytes, edit: Edited, day: date, settings: Settings | None = None
) -> Change:
    old_date = _as_date(edit.old_value, settings)
    return Change(target.shown, old_date, day, _diff(target, old, edit), edit.next_due)


_MASK = date(1, 1, 1)  # what the last-reviewed value is replaced by, to digest the rest


def content_digest(data: bytes, key: str, path: str, due_key: str | None = None) -> str | None:
    """A digest of a document's bytes apart from its last-reviewed value (and its next-review
    value ``due_key``, where it has one): what changes when a review changes anything but the
    dates. None when the value cannot be found safely."""
    masked = set_date(data, key, _MASK, path)
    # Most pages have no next-review value: only those whose bytes name its key are parsed.
    named = due_key is not None and due_key.partition(".")[0].encode() in data
    if isinstance(masked, Edited) and due_key is not None and named:
        frontmatter = read_frontmatter(data, path)
        if frontmatter is not None and frontmatter.find(due_key)[0]:
            masked = set_date(masked.data, due_key, _MASK, path)
    return hashlib.sha256(masked.data).hexdigest() if isinstance(masked, Edited) else None


def _changed(before: Seen | None, content: str | None) -> bool | None:
    """Whether the document changed apart from its date since it was last seen; None when
    that is not known."""
    if before is None or before.content is None or content is None:
        return None
    return before.content != content


def observe(
    store: StateStore,
    documents: Iterable[DocumentReport],
    cwd: Path,
    settings: Settings,
    now: datetime,
) -> None:
    """Record what a run sees: a last-reviewed date changed by hand is logged as a review
    "edited outside the tool". A document's bytes are read (for :func:`content_digest`) only
    when its date moved, or when it needs review and none are kept yet, so that a later review
    can tell whether anything but the date changed."""
    updates, entries = observed(store.reviews.seen(), documents, cwd, settings, now)
    if updates:
        store.reviews.observe(updates, entries)


class Observable(Protocol):
    """What noticing a date changed by hand needs of a document: a :class:`DocumentReport`
    has it, and so has the lighter record a cycle works from."""

    @property
    def path(self) -> str: ...
    @property
    def state(self) -> State: ...
    @property
    def last_reviewed(self) -> date | None: ...


def observed(
    seen: Mapping[str, Seen],
    documents: Iterable[Observable],
    cwd: Path,
    settings: Settings,
    now: datetime,
    stop: threading.Event | None = None,
) -> tuple[list[Seen], list[LogEntry]]:
    """What :func:`observe` records, given what was ``seen`` before; reads files but not the
    store, so it can run in a worker thread. Ends early (with what it has) when ``stop`` is
    set: the rest is observed by the next run."""
    key = settings.fields.key("last_reviewed")
    updates: list[Seen] = []
    entries: list[LogEntry] = []
    for doc in documents:
        if stop is not None and stop.is_set():
            break
        if doc.last_reviewed is None:
            continue
        path = without_surrogates(doc.path)
        before = seen.get(path)
        moved = before is not None and before.last_reviewed != doc.last_reviewed
        wanted = doc.state in OUTSTANDING and (before is None or before.content is None)
        if before is not None and not moved and not wanted:
            continue
        content = _read_content(cwd / doc.path, key, path, settings) if moved or wanted else None
        if before is not None and moved:
            entries.append(
                LogEntry(
                    path,
                    LogKind.EDITED_OUTSIDE,
                    now,
                    old_date=before.last_reviewed,
                    new_date=doc.last_reviewed,
                    content_changed=_changed(before, content),
                )
            )
        updates.append(Seen(path, doc.last_reviewed, content))
    return updates, entries


def _read_content(path: Path, key: str, shown: str, settings: Settings) -> str | None:
    try:
        if path.stat().st_size > settings.content.max_file_bytes:
            return None
        return content_digest(path.read_bytes(), key, shown, settings.fields.key("review_by"))
    except OSError:
        return None


def _edit(
    settings: Settings, cwd: Path, target: Target, key: str, day: date, force: bool
) -> tuple[bytes, Edited] | Refused:
    """The document's bytes and the edit that sets its date, or why it is refused. A page
    scheduled by a next-review date gets that date moved to ``day`` plus its frequency (its own,
    or the default for its path) and, if it records one, its last-reviewed date set too."""
    try:
        size = target.path.stat().st_size
        if size > settings.content.max_file_bytes:
            return Refused("is over [content] max_file_bytes")
        data = target.path.read_bytes()
    except OSError as exc:
        return Refused(f"cannot be read: {exc.strerror}")
    scheduled = _next_review(settings, cwd, target, data, day)
    if isinstance(scheduled, Refused):
        return scheduled
    first = data
    if scheduled is not None:
        due_key, next_due, has_last = scheduled
        moved = set_date(data, due_key, next_due, target.shown)
        if isinstance(moved, Refused) or not has_last:
            if isinstance(moved, Refused):
                return moved
            return data, Edited(moved.data, None, next_due)  # no last review recorded
        first = moved.data
    edit = set_date(first, key, day, target.shown)
    if isinstance(edit, Refused):
        return edit
    old = _as_date(edit.old_value, settings)
    if old is not None and old > day and not force:
        return Refused(
            f"was last reviewed on {old}, after {day}; use --force to record an earlier date"
        )
    return data, edit if scheduled is None else _with_due(edit, scheduled[1])


def _with_due(edit: Edited, next_due: date) -> Edited:
    return Edited(edit.data, edit.old_value, next_due)


def _next_review(
    settings: Settings, cwd: Path, target: Target, data: bytes, day: date
) -> tuple[str, date, bool] | Refused | None:
    """For a page with a next-review date: its key, the date to set and whether the page also
    records its last review; why it cannot be moved; or None for any other page."""
    names = settings.fields
    due_key = names.key("review_by")
    frontmatter = read_frontmatter(data, target.shown)
    if frontmatter is None or not frontmatter.find(due_key)[0]:
        return None  # set_date explains what is wrong with a page it cannot read
    freq_key = names.key("review_frequency")
    written, value, _ = frontmatter.find(freq_key)
    every: Cadence | None = None
    if written and value is not UNREAD and value is not None:
        try:
            every = cadence(value)
        except ValueError as exc:
            if explained(exc) is None:
                raise
            return Refused(
                f"its {freq_key} value cannot be read, so its next review ({due_key}) cannot "
                "be worked out; correct it first"
            )
    elif not written:
        root = os.path.realpath(cwd / settings.content.root)
        rel = os.path.relpath(target.path, root).replace(os.sep, "/")
        default = Frequencies(settings.review).for_path(rel)
        every = default.cadence if default is not None else None
    if every is None:
        return Refused(
            f"has a next-review date ({due_key}) but no review frequency, so the next one "
            f"cannot be worked out; set {due_key} by hand, or add {freq_key} to the page or "
            "[review] default_frequency to the config"
        )
    try:
        next_due = every.after(day)
    except (OverflowError, ValueError):
        return Refused(f"{day} plus {every.label} falls after 9999-12-31")
    return due_key, next_due, frontmatter.find(names.key("last_reviewed"))[0]


def _as_date(value: str | None, settings: Settings | None = None) -> date | None:
    if value is None:
        return None
    try:
        if settings is None:
            return iso_date(value.strip())
        zone = ParsingRules((), (), settings.review.zone)
        return calendar_date(value, zone)  # a timestamp too, as its date in the time zone
    except ValueError as exc:
        if explained(exc) is None:
            raise
        return None  # an unreadable date is what the review puts right


def _diff(target: Target, old: bytes, edit: Edited) -> str:
    def lines(data: bytes) -> list[str]:
        return data.decode("utf-8", "surrogateescape").splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(lines(old), lines(edit.data), f"a/{target.shown}", f"b/{target.shown}")
    )


class CommitError(SchedulerError):
    """The documents were changed and their reviews recorded, but git did not commit them."""

    exit_code = 1


def _git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; its output. CalledProcessError when it fails."""
    try:
        done = subprocess.run(
            ["git", *args],  # noqa: S607 (the user's git, found as their shell finds it)
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        )
    except FileNotFoundError:
        raise UsageError("--commit needs git, which is not installed") from None
    return done.stdout.strip()


def _check_git(cwd: Path) -> None:
    """Before anything is changed: ``--commit`` needs a git working tree."""
    try:
        _git(cwd, "rev-parse", "--is-inside-work-tree")
    except subprocess.CalledProcessError as exc:
        raise UsageError(f"--commit needs a git working tree: {exc.stderr.strip()}") from None


def _commit(
    cwd: Path,
    paths: Sequence[Path],
    changes: Sequence[Change],
    editor: str | None,
    outcome: str | None,
) -> str:
    """Commit the changed documents, and only them, in the git working tree holding them."""
    names = ", ".join(c.shown for c in changes)
    message = f"Reviewed {names}" + (f" by {editor}" if editor else "")
    message += f": {outcome or 'no outcome recorded'}"
    files = [str(p) for p in paths]
    try:
        _git(cwd, "add", "--", *files)
        _git(cwd, "commit", "--quiet", "-m", message, "--only", "--", *files)
        return _git(cwd, "rev-parse", "--short", "HEAD")
    except subprocess.CalledProcessError as exc:
        raise CommitError(
            f"the documents were changed and their reviews recorded, but not committed: "
            f"git {exc.cmd[1]}: {exc.stderr.strip()}"
        ) from None


# --------------------------------------------------------------------------- snoozes


@dataclass(frozen=True, slots=True)
class SnoozeResult:
    snoozed: list[Snooze] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    listed: list[Snooze] = field(default_factory=list)


def snooze(
    settings: Settings,
    cwd: Path,
    names: Sequence[str],
    today: date,
    now: datetime,
    *,
    until: date,
    reason: str,
    editor: str | None = None,
) -> SnoozeResult:
    """Postpone the reminders for each document until ``until`` (reminders resume that day)."""
    longest = settings.reminders.max_snooze_days
    if until <= today:
        raise UsageError(f"--until {until} is not after today ({today})")
    if until > today + timedelta(days=longest):
        raise UsageError(
            f"--until {until} is more than {longest} days ahead "
            "([reminders] max_snooze_days); review the document instead"
        )
    if not reason.strip():
        raise UsageError("--reason must say why the review is postponed")
    found, refused = targets(settings, names, cwd)
    snoozes = [Snooze(t.shown, until, reason.strip(), editor, now) for t in found]
    if snoozes:
        with open_store(settings.store, cwd) as store:
            store.snoozes.snooze(snoozes)
    return SnoozeResult(snoozed=snoozes, refused=refused)


def cancel_snoozes(
    settings: Settings, cwd: Path, names: Sequence[str], now: datetime, editor: str | None
) -> SnoozeResult:
    """Remove the snoozes of the documents ``names`` stand for."""
    shown = [without_surrogates(display_path(Path(name), cwd)) for name in names]
    if not store_exists(settings.store, cwd):
        return SnoozeResult(refused=[Refusal(s, "is not snoozed") for s in shown])
    with open_store(settings.store, cwd) as store:
        cancelled = store.snoozes.cancel(shown, now, editor)
    missed = [Refusal(s, "is not snoozed") for s in shown if s not in cancelled]
    return SnoozeResult(cancelled=cancelled, refused=missed)


def in_force(store: StateStore, today: date) -> list[Snooze]:
    """The snoozes that hold on ``today``: reminders resume on the ``until`` date."""
    return [s for s in store.snoozes.listing() if today < s.until]


def evidence(store: StateStore, today: date) -> Evidence:
    """What reports mark on ``today``: the snoozes in force, and the reviews that moved the
    date with nothing else changed and no outcome recorded."""
    stamped = {
        path: entry.new_date
        for path, entry in store.reviews.latest_reviews().items()
        if entry.content_changed is False and entry.outcome is None and entry.new_date
    }
    snoozes = {s.path: Snoozed(s.until, s.reason) for s in in_force(store, today)}
    return Evidence(snoozes, stamped)


def stored_evidence(settings: Settings, cwd: Path, today: date) -> Evidence:
    """:func:`evidence`, from the configured store; none when there is none (never made), or
    when it cannot be read (a report goes on without it, saying so)."""
    if not store_exists(settings.store, cwd):
        return Evidence()
    try:
        with open_read_only(settings.store, cwd) as store:
            return evidence(store, today)
    except StoreError as exc:
        log.warning("working without the review log (snoozes, rubber stamps): %s", exc)
        return Evidence()


def list_snoozes(settings: Settings, cwd: Path, today: date) -> SnoozeResult:
    if not store_exists(settings.store, cwd):
        return SnoozeResult()
    with open_read_only(settings.store, cwd) as store:
        return SnoozeResult(listed=in_force(store, today))


# --------------------------------------------------------------------------- history


@dataclass(frozen=True, slots=True)
class History:
    entries: list[LogEntry]


def history(
    settings: Settings, cwd: Path, path: Path | None = None, since: datetime | None = None
) -> History:
    """The review log (of one document; from ``since`` on), oldest first."""
    if not store_exists(settings.store, cwd):
        return History([])
    shown = without_surrogates(display_path(path, cwd)) if path is not None else None
    with open_read_only(settings.store, cwd) as store:
        return History(store.reviews.entries(shown, since))
