"""The dashboard and the calendar feeds, shared by their commands and the daemon. No printing,
no clock."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scheduler.config import Settings
from scheduler.errors import UsageError
from scheduler.render.calendar import calendar_feed, feed_name
from scheduler.render.dashboard import render_dashboard
from scheduler.results import CheckResult, DocumentReport
from scheduler.usecases.check import Selection, check

CALENDARS = "calendars"  # the dashboard's folder of feeds, one per editor


def calendar(settings: Settings, cwd: Path, today: date, editor: str | None = None) -> bytes:
    """The calendar feed of every scheduled review, or of ``editor``'s only."""
    selection = Selection(editors=frozenset({editor.casefold()}) if editor else frozenset())
    result = check(settings, [], cwd, today, selection, use_cache=True)
    name = f"Reviews for {editor}" if editor else "Reviews"
    return calendar_feed(result, name)


@dataclass(frozen=True, slots=True)
class Published:
    """What writing the dashboard did."""

    index: Path
    documents: int
    feeds: int


def site(result: CheckResult) -> dict[str, bytes]:
    """The dashboard's files by relative path: ``index.html`` and a feed per editor."""
    mine: dict[str, list[DocumentReport]] = {}
    for doc in result.documents:
        for editor in doc.editors:
            mine.setdefault(editor, []).append(doc)
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    for editor in sorted(mine):
        feed = CheckResult(result.as_of, result.timezone, result.due_soon_days, mine[editor])
        link = f"{CALENDARS}/{feed_name(editor)}"
        files[link] = calendar_feed(feed, f"Reviews for {editor}")
        links[editor] = link
    files["index.html"] = render_dashboard(result, links).encode()
    return files


def publish_dashboard(settings: Settings, cwd: Path, today: date, out: Path) -> Published:
    """Check every document and write the dashboard to the folder ``out``. Each file is
    replaced whole (a reader never sees half of one); feeds of editors who have no documents
    any more are removed."""
    result = check(settings, [], cwd, today, use_cache=True)
    files = site(result)
    folder = cwd / out
    try:
        (folder / CALENDARS).mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            write_file(folder / name, content)
        for old in (folder / CALENDARS).glob("*.ics"):
            if f"{CALENDARS}/{old.name}" not in files:
                old.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write the dashboard to {out}: {exc.strerror or exc}") from None
    return Published(folder / "index.html", len(result.documents), len(files) - 1)


def write_file(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` whole: a reader sees the old file or the new one."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        temporary.chmod(0o644)  # a web page, for any static host to serve
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
