"""The freshness report (``check-reviews``) in every output format."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date
from json.encoder import encode_basestring

from scheduler.content.fields import SHOWN
from scheduler.render import Registry, RenderOptions
from scheduler.render.common import (
    capped_annotations,
    csv_cell,
    github_annotation,
    iso,
    json_safe,
    plural,
    problem_annotation,
    problem_line,
    shown,
)
from scheduler.results import SUMMARY_ORDER, CheckResult, DocumentReport, State

SCHEMA_VERSION = 1
CHECK_FORMATS: Registry[CheckResult] = Registry("the freshness report")


def summary_line(result: CheckResult) -> str:
    counts = result.counts()
    parts = ", ".join(f"{counts[s.value]} {s.label}" for s in SUMMARY_ORDER)
    if "unscheduled" in counts:  # [content] scope = "declared"
        parts += f"; {counts['unscheduled']} unscheduled"
    marked = [
        f"{counts[k]} {k.replace('_', '-')}" for k in ("snoozed", "rubber_stamped") if k in counts
    ]
    snoozed = f" ({', '.join(marked)})" if marked else ""
    return (
        f"Review status on {result.as_of.isoformat()} ({shown(result.timezone)}): "
        f"{plural(counts['documents'], 'document')}: {parts}{snoozed}"
    )


def state_label(doc: DocumentReport) -> str:
    """The state, and a snooze if there is one."""
    if doc.snoozed is None:
        return doc.state.label
    return f"{doc.state.label}, snoozed until {doc.snoozed.until.isoformat()}"


def notes(doc: DocumentReport) -> list[str]:
    """What the review log says of the document, one line each: a snooze, a rubber stamp."""
    lines = []
    if doc.snoozed is not None:
        lines.append(
            f"{doc.path}: snoozed until {doc.snoozed.until.isoformat()}: {doc.snoozed.reason}"
        )
    if doc.rubber_stamped and doc.last_reviewed is not None:
        lines.append(
            f"{doc.path}: rubber-stamped: the last-reviewed date moved to "
            f"{doc.last_reviewed.isoformat()} with nothing else changed and no outcome recorded"
        )
    return [shown(line) for line in lines]


_STYLES = {
    State.INVALID: "bold magenta",
    State.OVERDUE: "bold red",
    State.DUE_SOON: "yellow",
    State.OK: "green",
    State.EXEMPT: "dim",
    State.UNSCHEDULED: "dim",
}


_COLUMNS = (
    ("State", "left"),
    ("Due", "left"),
    ("Days", "right"),
    ("Title", "left"),
    ("Path", "left"),
    ("Editors", "left"),
)
_FIXED = 3  # state, due and days are never wrapped nor cut
_TITLE, _PATH, _EDITORS = 3, 4, 5
# What the table adds around its cells: an edge on each side, and between two columns a
# separator with a space of padding on either side (rich's SIMPLE_HEAD box, pad_edge=False).
_EDGES, _BETWEEN = 2, 3
_SIDE_BY_SIDE = 90  # columns needed for title, path and editors side by side, each wrapped
_NARROWEST = 12  # the document column of a stacked table is never narrower than this


def layout(rows: list[list[str]], width: int | None) -> list[int] | int | None:
    """How the table fits a terminal ``width`` columns wide: ``None`` when every row fits as
    it is (or there is no terminal); the width of each column when title, path and editors can
    stand side by side (the editors, one a line, get up to two fifths of their room, the path
    up to half the rest, shortened from the left, and the title the rest, wrapped); else the
    width of one "Document" column that stacks them. State, due date and days always keep
    their width."""
    from rich.cells import cell_len

    natural = [
        max(cell_len(name), *(cell_len(row[i]) for row in rows))
        for i, (name, _) in enumerate(_COLUMNS)
    ]
    chrome = _EDGES + _BETWEEN * (len(_COLUMNS) - 1)
    if width is None or sum(natural) + chrome <= width:
        return None
    room = width - chrome - sum(natural[:_FIXED])
    if room < _SIDE_BY_SIDE:
        return max(_NARROWEST, room + 2 * _BETWEEN)
    longest_editor = max(cell_len(e) for row in rows for e in row[_EDITORS].split(", "))
    editors = min(longest_editor, room * 2 // 5)  # one editor a line
    path = min(natural[_PATH], (room - editors) // 2)
    title = room - path - editors
    if title > natural[_TITLE]:  # a short title leaves room for the path
        spare = title - natural[_TITLE]
        title = natural[_TITLE]
        path = min(natural[_PATH], path + spare)
    return [*natural[:_FIXED], title, path, editors]


def _table_width(rows: list[list[str]], widths: list[int] | int | None) -> int:
    """The width of the table :func:`layout` planned (0 when it planned none)."""
    from rich.cells import cell_len

    if widths is None:
        return 0
    if isinstance(widths, list):
        return _EDGES + _BETWEEN * (len(widths) - 1) + sum(widths)
    fixed = [max(cell_len(_COLUMNS[i][0]), *(cell_len(r[i]) for r in rows)) for i in range(_FIXED)]
    return _EDGES + _BETWEEN * _FIXED + sum(fixed) + widths


def shortened(path: str, width: int) -> str:
    """``path`` in at most ``width`` terminal columns: its end, after an ellipsis, from a folder
    boundary where one is near (``…/guides/cancer.md``)."""
    from rich.cells import cell_len

    if cell_len(path) <= width:
        return path
    tail = path
    while tail and cell_len(tail) > width - 1:
        tail = tail[1:]
    cut = tail.find("/")
    if 0 <= cut <= width // 4 and cut < len(tail) - 1:
        tail = tail[cut:]
    return "…" + tail


def _rows(result: CheckResult) -> list[list[str]]:
    """The table's cells, one row per document, as both text layouts show them."""
    return [
        [
            state_label(doc),
            iso(doc.due) or "-",
            "" if doc.days_until_due is None else str(doc.days_until_due),
            shown(doc.title or "(no title)"),
            shown(doc.path),
            shown(", ".join(doc.editors) or "(nobody)"),
        ]
        for doc in result.documents
    ]


def _plain_text(result: CheckResult) -> list[str]:
    """The text report for a pipe or a file (no colour, no width): the same text rich lays
    out, written directly, so that a run whose output is not a terminal never imports rich's
    console (a tenth of ``check-reviews``' start-up)."""
    from rich.cells import cell_len  # one small module: widths as the terminal shows them

    lines = [summary_line(result)]
    if result.documents:
        rows = _rows(result)
        headers = [name for name, _ in _COLUMNS]
        widths = [max(cell_len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

        def line(cells: list[str]) -> str:
            padded = [
                " " * (w - cell_len(c)) + c if justify == "right" else c + " " * (w - cell_len(c))
                for c, w, (_, justify) in zip(cells, widths, _COLUMNS, strict=True)
            ]
            return (" " + "   ".join(padded)).rstrip()

        rule = " " + "─" * (sum(widths) + _BETWEEN * (len(widths) - 1))
        lines += ["", line(headers), rule, *(line(row) for row in rows), ""]
    review_notes = [line for doc in result.documents for line in notes(doc)]
    if review_notes:
        lines += ["Review notes:", *(f"  {line}" for line in review_notes)]
    problems = [p for doc in result.documents for p in doc.problems]
    if problems:
        lines += ["Problems:", *(f"  {problem_line(p)}" for p in problems)]
    return ["\n".join(line.rstrip() for line in lines) + "\n"]


@CHECK_FORMATS.register("text", "summary and table")
def render_check_text(result: CheckResult, options: RenderOptions) -> list[str]:
    if options.width is None and not options.color:
        return _plain_text(result)
    return _rich_text(result, options)


def _rich_text(result: CheckResult, options: RenderOptions) -> list[str]:
    """The text report laid out by rich: in colour, or to fit a terminal."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=options.width or 10_000,
        force_terminal=options.color,
        no_color=not options.color,
        color_system="standard" if options.color else None,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(summary_line(result), soft_wrap=options.width is None)
    if result.documents:
        rows = _rows(result)
        widths = layout(rows, options.width)
        columns = list(_COLUMNS)
        if isinstance(widths, int):  # narrow: title, path and editors one under the other
            columns[_TITLE:] = [("Document", "left")]
            rows = [
                [
                    *row[:_FIXED],
                    "\n".join(
                        [row[_TITLE], shortened(row[_PATH], widths), *row[_EDITORS].split(", ")]
                    ),
                ]
                for row in rows
            ]
        elif widths is not None:
            for row in rows:
                row[_PATH] = shortened(row[_PATH], widths[_PATH])
                row[_EDITORS] = row[_EDITORS].replace(", ", "\n")
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
        for index, (name, justify) in enumerate(columns):
            if widths is None:
                width = None
            elif isinstance(widths, int):
                width = widths if index == _FIXED else None
            else:
                width = widths[index]
            table.add_column(
                name,
                justify=justify,  # type: ignore[arg-type]
                no_wrap=index < _FIXED,
                overflow="fold",
                width=width,
            )
        for doc, row in zip(result.documents, rows, strict=True):
            table.add_row(*row, style=_STYLES[doc.state] if options.color else None)
        # A terminal too narrow even for the columns that are never cut: lines overflow.
        terminal_width = console.width
        console.width = max(_table_width(rows, widths), terminal_width)
        console.print(table)
        console.width = terminal_width
    review_notes = [line for doc in result.documents for line in notes(doc)]
    if review_notes:
        console.print("Review notes:")
        for line in review_notes:
            console.print(f"  {line}", soft_wrap=True)
    problems = [p for doc in result.documents for p in doc.problems]
    if problems:
        console.print("Problems:")
        for problem in problems:
            console.print(f"  {problem_line(problem)}", soft_wrap=True)
    text = buffer.getvalue()
    return ["\n".join(line.rstrip() for line in text.splitlines()) + "\n"]


@CHECK_FORMATS.register("json", "machine-readable (schema_version 1)")
def render_check_json(result: CheckResult, options: RenderOptions) -> Iterator[str]:
    """The JSON report in pieces, so that a large one is never held whole in memory."""
    head = {
        "schema_version": SCHEMA_VERSION,
        "as_of": result.as_of.isoformat(),
        "timezone": result.timezone,
        "due_soon_days": result.due_soon_days,
        "summary": result.counts(),
    }
    if result.unscheduled is not None:  # only then: the default report stays as it was
        head["scope"] = "declared"
    # One document per line: valid JSON, readable, and fast to write for large libraries.
    encode = json.JSONEncoder(ensure_ascii=False).encode
    if not (result.documents or result.states):
        yield json_safe(encode(head)[:-1] + ', "documents": []}\n')
        return
    # Encoded entries are strict UTF-8 already, in pieces of one or more.
    safe = json_safe if result.encoded is None else str
    entries = (
        map(document_json, result.documents) if result.encoded is None else result.encoded.pieces
    )
    piece = [encode(head)[:-1] + ', "documents": [\n  ']
    separator = ""
    for entry in entries:
        if len(entry) >= _LARGE:  # many entries written together: passed on as they are
            piece.append(separator)
            yield safe("".join(piece))
            yield safe(entry)
            piece = []
        else:
            piece.append(separator + entry)
        separator = JsonEntries.separator
        if len(piece) >= _PIECE:
            yield safe("".join(piece))
            piece = []
    piece.append("\n]}\n")
    yield safe("".join(piece))


_PIECE = 500  # documents per piece of a streamed report
_LARGE = 1 << 16  # characters: a piece of this size is not copied into another
_encode = json.JSONEncoder(ensure_ascii=False).encode


def document_json(doc: DocumentReport) -> str:
    """``json.dumps(doc.to_json(), ensure_ascii=False)``, written out directly: the report
    writes one per document, and this takes a third of the time."""
    head, middle, tail = document_parts(doc)
    days = "null" if doc.days_until_due is None else doc.days_until_due
    return f'{{"path": {encode_basestring(doc.path)}{head}{doc.state.value}{middle}{days}{tail}'


class JsonEntries:
    """The JSON report's entries for :func:`scheduler.usecases.check.check`, which can keep
    their parts in the parse cache: see :class:`scheduler.usecases.check.EntryEncoder`."""

    @staticmethod
    def parts(doc: DocumentReport) -> tuple[str, str, str]:
        return document_parts(doc)

    separator = ",\n  "  # between entries: one document per line

    @staticmethod
    def template(path: str, head: str, middle: str, tail: str) -> str:
        """The entry of the document at ``path`` with these parts, as a template for ``%``
        with two fields: its state's name, then its day count (or ``null``). Strict UTF-8
        when the parts are (see :func:`scheduler.text.json_safe`), as the cache keeps them."""
        lead = f'{{"path": {json_safe(encode_basestring(path))}{head}'
        if "%" in lead or "%" in middle or "%" in tail:
            lead, middle, tail = (part.replace("%", "%%") for part in (lead, middle, tail))
        return f"{lead}%s{middle}%s{tail}"

    @classmethod
    def entry(
        cls, path: str, head: str, state: str, middle: str, days: int | None, tail: str
    ) -> str:
        return cls.template(path, head, middle, tail) % (state, "null" if days is None else days)


def document_parts(doc: DocumentReport) -> tuple[str, str, str]:
    """A document's JSON report entry less its path, state and day count, which depend on
    where the tool runs and on the day: what comes after the path, between the state and the
    day count, and after that. The parse cache keeps these for warm runs (see
    :func:`scheduler.usecases.check.check`), so they must be all a report entry holds."""
    text = encode_basestring
    shown = (
        "".join(f"{text(name)}: {_encode(value)}, " for name, value in doc.shown)
        if doc.shown
        else ""
    )
    return (
        f', "title": {"null" if doc.title is None else text(doc.title)}, "state": "',
        f'", "status": {"null" if doc.status is None else text(doc.status)}, '
        f'"last_reviewed": {_json_date(doc.last_reviewed)}, '
        f'"review_frequency": '
        f"{'null' if doc.review_frequency is None else text(doc.review_frequency)}, "
        f"{shown}"
        f'"due": {_json_date(doc.due)}, '
        f'"days_until_due": ',
        f', "editors": [{", ".join(map(text, doc.editors))}], '
        f'"problems": [{", ".join(_encode(p.to_json()) for p in doc.problems)}]'
        f"{_additions(doc)}}}",
    )


def _additions(doc: DocumentReport) -> str:
    if doc.snoozed is None and not doc.rubber_stamped and not doc.links:
        return ""  # the common case: no dictionary is built
    return "".join(f", {encode_basestring(k)}: {_encode(v)}" for k, v in doc.additions().items())


def _json_date(value: date | None) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


_MD_ESCAPE = str.maketrans(
    {
        "|": "\\|",
        "\\": "\\\\",
        "*": "\\*",
        "_": "\\_",
        "~": "\\~",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
    }
)
# What would open a block (heading, list, rule) at the start of a list item's text.
_MD_BLOCK_START = re.compile(r"^(?:[#+=-]|(\d+)(?=[.)]))")


def _md(text: str) -> str:
    """Text as literal Markdown: shown safely (no line breaks, controls escaped), with every
    character that Markdown, a table or HTML would act on escaped, so that a file name or a
    title can neither forge a row nor inject markup."""
    escaped = shown(text).translate(_MD_ESCAPE)
    return _MD_BLOCK_START.sub(
        lambda m: m.group() + "\\" if m.group(1) else "\\" + m.group(), escaped
    )


def _md_links(doc: DocumentReport) -> str:
    """The document's links, beside its path: `` ([edit](...), [view](...))``."""
    if not doc.links:
        return ""
    shown_links = ", ".join(f"[{name.removesuffix('_url')}]({url})" for name, url in doc.links)
    return f" ({shown_links})"


@CHECK_FORMATS.register("markdown", "a table for pull requests or wikis")
def render_check_markdown(result: CheckResult, options: RenderOptions) -> list[str]:
    lines = [f"**{_md(summary_line(result))}**", ""]
    if result.documents:
        lines += ["| State | Due | Days | Title | Path | Editors |", "|---|---|---:|---|---|---|"]
        for doc in result.documents:
            cells = [
                state_label(doc),
                iso(doc.due) or "",
                "" if doc.days_until_due is None else str(doc.days_until_due),
                _md(doc.title or ""),
                _md(doc.path) + _md_links(doc),
                _md(", ".join(doc.editors)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    review_notes = [line for doc in result.documents for line in notes(doc)]
    if review_notes:
        lines += ["", "**Review notes**", ""]
        lines += [f"- {_md(line)}" for line in review_notes]
    problems = [p for doc in result.documents for p in doc.problems]
    if problems:
        lines += ["", "**Problems**", ""]
        lines += [f"- {_md(problem_line(p))}" for p in problems]
    return ["\n".join(lines) + "\n"]


def _shown_cells(doc: DocumentReport) -> list[str]:
    """The further reported fields: lists joined with ``;``, nothing for a missing value."""
    if not SHOWN:
        return []
    values = dict(doc.shown)
    cells = []
    for field in SHOWN:
        value = values.get(field.name)
        if isinstance(value, list):
            value = ";".join(map(str, value))
        cells.append(csv_cell("" if value is None else str(value)))
    return cells


@CHECK_FORMATS.register("csv", "one row per document")
def render_check_csv(result: CheckResult, options: RenderOptions) -> Iterator[str]:
    """The CSV report in pieces, so that a large one is never held whole in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "path",
            "title",
            "state",
            "status",
            "last_reviewed",
            "review_frequency",
            *(field.name for field in SHOWN),
            "due",
            "days_until_due",
            "editors",
            "errors",
            "warnings",
            "snoozed_until",
            "snooze_reason",
            "rubber_stamped",
        ]
    )
    for index, doc in enumerate(result.documents, 1):
        errors = sum(p.is_error for p in doc.problems)
        writer.writerow(
            [
                csv_cell(doc.path),
                csv_cell(doc.title or ""),
                doc.state.value,
                csv_cell(doc.status or ""),
                iso(doc.last_reviewed) or "",
                csv_cell(doc.review_frequency or ""),
                *_shown_cells(doc),
                iso(doc.due) or "",
                "" if doc.days_until_due is None else doc.days_until_due,
                csv_cell(";".join(doc.editors)),
                errors,
                len(doc.problems) - errors,
                iso(doc.snoozed.until) if doc.snoozed else "",
                csv_cell(doc.snoozed.reason) if doc.snoozed else "",
                "yes" if doc.rubber_stamped else "",
            ]
        )
        if index % _PIECE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _snooze_note(doc: DocumentReport) -> str:
    if doc.snoozed is None:
        return ""
    return f"; snoozed until {doc.snoozed.until.isoformat()}: {doc.snoozed.reason}"


@CHECK_FORMATS.register(
    "github",
    "GitHub Actions annotations: errors for overdue and invalid documents, notices for those "
    "due soon, at most 10 of each kind",
)
def render_check_github(result: CheckResult, options: RenderOptions) -> list[str]:
    lines = []
    for doc in result.documents:
        editors = ", ".join(doc.editors) or "nobody"
        if doc.state is State.OVERDUE and doc.due is not None and doc.days_until_due is not None:
            late = -doc.days_until_due
            lines.append(
                github_annotation(
                    "error",
                    doc.path,
                    doc.line,
                    "Review overdue",
                    f"{doc.title or doc.path} was due for review on {doc.due.isoformat()} "
                    f"({plural(late, 'day')} ago); editors: {editors}{_snooze_note(doc)}",
                )
            )
        elif doc.state is State.DUE_SOON and doc.due is not None:
            days = doc.days_until_due or 0
            when = "today" if days == 0 else f"in {plural(days, 'day')}"
            lines.append(
                github_annotation(
                    "notice",
                    doc.path,
                    doc.line,
                    "Review due soon",
                    f"{doc.title or doc.path} is due for review on {doc.due.isoformat()} "
                    f"({when}); editors: {editors}{_snooze_note(doc)}",
                )
            )
        elif doc.state is State.INVALID:
            lines.extend(problem_annotation(p) for p in doc.problems if p.is_error)
        if doc.rubber_stamped and doc.last_reviewed is not None:
            lines.append(
                github_annotation(
                    "warning",
                    doc.path,
                    doc.line,
                    "Rubber-stamped review",
                    f"the last-reviewed date moved to {doc.last_reviewed.isoformat()} with "
                    "nothing else changed and no outcome recorded",
                )
            )
    lines = capped_annotations(lines)
    lines.append(summary_line(result))
    return ["\n".join(lines) + "\n"]
