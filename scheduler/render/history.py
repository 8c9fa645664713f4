"""``review-scheduler history``: the review log, per document, as text, JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from scheduler.render import Registry, RenderOptions
from scheduler.render.common import csv_cell, iso, json_document, shown
from scheduler.store import LogEntry, LogKind
from scheduler.usecases.reviews import History

HISTORY_FORMATS: Registry[History] = Registry("the history")

COLUMNS = (
    "path",
    "at",
    "kind",
    "editor",
    "old_date",
    "new_date",
    "until",
    "outcome",
    "note",
    "content_changed",
)


def _by_path(history: History) -> Iterator[tuple[str, list[LogEntry]]]:
    """Documents in path order; each document's entries in the order they happened."""
    ordered = sorted(history.entries, key=lambda e: e.path)  # stable: keeps the log's order
    for path, entries in groupby(ordered, key=lambda e: e.path):
        yield path, list(entries)


def describe(entry: LogEntry) -> str:
    """One entry in words, for people."""
    by = f" by {entry.editor}" if entry.editor else ""
    unchanged = "; nothing else changed" if entry.content_changed is False else ""
    if entry.kind is LogKind.REVIEWED:
        text = f"reviewed{by}: last reviewed {iso(entry.old_date) or '(none)'} -> "
        text += f"{iso(entry.new_date)}; outcome {entry.outcome or 'not recorded'}{unchanged}"
        return text + (f"; note: {entry.note}" if entry.note else "")
    if entry.kind is LogKind.EDITED_OUTSIDE:
        return (
            f"last reviewed {iso(entry.old_date) or '(none)'} -> {iso(entry.new_date)}, "
            f"edited outside the tool{unchanged}"
        )
    if entry.kind is LogKind.SNOOZED:
        return f"snoozed{by} until {iso(entry.new_date)}: {entry.note}"
    if entry.kind is LogKind.SNOOZE_CANCELLED:
        return f"snooze cancelled{by}"
    return f"reminder sent to {entry.editor} ({entry.note})"


@HISTORY_FORMATS.register("text", "one line per entry, grouped by document")
def render_history_text(history: History, options: RenderOptions) -> Iterator[str]:
    if not history.entries:
        yield "No reviews, snoozes or reminders recorded.\n"
        return
    for path, entries in _by_path(history):
        yield shown(path) + "\n"
        for entry in entries:
            when = entry.at.isoformat(sep=" ", timespec="seconds")
            yield f"  {when}  {shown(describe(entry))}\n"


def _record(entry: LogEntry) -> dict[str, Any]:
    snoozed = entry.kind is LogKind.SNOOZED  # its new date is when reminders resume
    return {
        "path": entry.path,
        "at": entry.at.isoformat(),
        "kind": entry.kind.value,
        "editor": entry.editor,
        "old_date": iso(entry.old_date),
        "new_date": None if snoozed else iso(entry.new_date),
        "until": iso(entry.new_date) if snoozed else None,
        "outcome": entry.outcome,
        "note": entry.note,
        "content_changed": entry.content_changed,
    }


@HISTORY_FORMATS.register("json", "one JSON object: documents, each with its entries")
def render_history_json(history: History, options: RenderOptions) -> list[str]:
    documents = [
        {"path": path, "entries": [_record(e) for e in entries]}
        for path, entries in _by_path(history)
    ]
    return [json_document({"schema_version": 1, "documents": documents})]


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return csv_cell(str(value))


@HISTORY_FORMATS.register("csv", "one row per entry")
def render_history_csv(history: History, options: RenderOptions) -> list[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for _, entries in _by_path(history):
        for entry in entries:
            record = _record(entry)
            writer.writerow([_csv_value(record[c]) for c in COLUMNS])
    return [buffer.getvalue()]
