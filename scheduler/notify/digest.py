"""Render a reminder digest with Jinja2: subject, plain text and HTML.

Templates are ``subject.txt``, ``digest.txt`` and ``digest.html``: the built-in ones from the
project's ``templates/`` folder, each overridable by a file of the same name in the folder set as
``[mail] templates``. Editors may edit templates, so they run sandboxed; undefined variables are
errors; the HTML environment autoescapes, the text one does not.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from scheduler.errors import TemplateError
from scheduler.notify.reminders import Digest, DigestItem
from scheduler.results import DocumentReport
from scheduler.review.state import State
from scheduler.text import http_url, one_line, shown

TEMPLATE_NAMES = ("subject.txt", "digest.txt", "digest.html")

_GROUPS = (
    (State.OVERDUE, "Overdue", "#b10e1e"),
    (State.INVALID, "Metadata errors", "#7a0000"),
    (State.DUE_SOON, "Due soon", "#594d00"),
)


def builtin_templates() -> Path:
    """The templates/ folder shipped with the tool: beside the package in a checkout or an
    editable install, installed as ``scheduler.templates`` from a wheel."""
    source_tree = Path(__file__).resolve().parents[2] / "templates"
    if source_tree.is_dir():
        return source_tree
    return Path(str(resources.files("scheduler.templates")))


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    subject: str
    text: str
    html: str


def _status_line(item: DigestItem) -> str:
    doc = item.document
    due = doc.due.isoformat() if doc.due else None
    if doc.state is State.OVERDUE and due is not None:
        days = item.days_overdue or 0
        return f"Overdue: was due {due}, {days} day{'s' if days != 1 else ''} ago"
    if doc.state is State.DUE_SOON and due is not None:
        days = doc.days_until_due or 0
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        return f"Due soon: due {due}, {when}"
    return "The metadata has errors, so its review cannot be scheduled" + (
        f" (due {due})" if due else ""
    )


def record_command(path: str, editor: str) -> str:
    """The command that records a review of ``path`` by ``editor``, ready to paste."""
    return (
        f"review-scheduler mark-reviewed {shlex.quote(path)} --by {shlex.quote(editor)}"
        " --outcome no-change|minor|major"
    )


# A digest lists this many documents at most by default ([reminders] max_documents_per_digest):
# mail clients cut long messages short (Gmail clips a message past 102 KB, about a hundred
# documents), and a list of thousands is no help.
DIGEST_MAX_ITEMS = 100


def list_command(digest: Digest) -> str:
    """The command that lists every document of ``digest``, ready to paste."""
    if digest.escalation:
        return "check-reviews --state overdue"
    states = ",".join(state.value for state, _, _ in _GROUPS)
    return f"check-reviews --editor {shlex.quote(digest.recipient)} --state {states}"


def _item_context(item: DigestItem, recipient: str) -> dict[str, Any]:
    doc = item.document
    if not isinstance(doc, DocumentReport):
        # A cycle plans from light records and builds the full reports of what digests list.
        raise TypeError(f"a digest lists {doc.path!r} without its full report")
    links = dict(doc.links)
    return {
        "title": one_line(doc.title or doc.path),
        "path": shown(doc.path),
        "url": http_url(doc.url),
        "edit_url": http_url(links.get("edit_url")),
        "view_url": http_url(links.get("view_url")),
        "record_command": shown(record_command(doc.path, recipient)),
        "state": doc.state.value,
        "state_label": doc.state.label,
        "status_line": _status_line(item),
        "due": doc.due.isoformat() if doc.due else None,
        "days_until_due": doc.days_until_due,
        "days_overdue": item.days_overdue,
        "new": item.new,
        "escalated": item.escalated,
        "editors": [one_line(e) for e in doc.editors],
        "problems": [
            {
                "line": p.line,
                "field": None if p.field is None else shown(p.field),
                "severity": p.severity.value,
                "message": shown(p.message),
                "hint": None if p.hint is None else shown(p.hint),
                "text": shown(p.describe()),
            }
            for p in doc.problems
            if p.is_error
        ],
    }


def _groups(digest: Digest, listed: int) -> list[dict[str, Any]]:
    """An editor's digest by state; an escalation digest by editor, in the digest's order. Each
    group lists those of its documents among the first ``listed`` of the digest, and gives its
    ``total`` and how many ``more`` it has."""
    shown_items = set(map(id, digest.items[:listed]))
    if digest.escalation:
        by_editor: dict[str, list[DigestItem]] = {}
        for item in digest.items:
            by_editor.setdefault(", ".join(item.document.editors), []).append(item)
        parts = [
            (
                State.OVERDUE.value,
                one_line(f"Editor{'s' if ', ' in editors else ''}: {editors}"),
                _GROUPS[0][2],
                items,
            )
            for editors, items in sorted(by_editor.items())
        ]
    else:
        parts = [
            (state.value, heading, colour, [i for i in digest.items if i.document.state is state])
            for state, heading, colour in _GROUPS
        ]
    groups = []
    for state_value, heading, colour, items in parts:
        if not items:
            continue
        documents = [_item_context(i, digest.recipient) for i in items if id(i) in shown_items]
        groups.append(
            {
                "state": state_value,
                "heading": heading,
                "colour": colour,
                "documents": documents,
                "total": len(items),
                "more": len(items) - len(documents),
            }
        )
    return groups


def digest_context(
    digest: Digest,
    *,
    escalate_after_days: int,
    last_reviewed_key: str,
    escalate_to: Sequence[str] = (),
    max_items: int | None = DIGEST_MAX_ITEMS,
) -> dict[str, Any]:
    """What the templates see. ``escalate_to``: the escalation contacts, who are told of the
    escalated documents in an escalation digest of their own. Only the first ``max_items``
    documents (the most urgent: the digest's own order) are listed; the counts, the summary and
    each group's ``total`` still cover them all, and ``list_command`` lists the rest."""
    listed = digest.items[:max_items]
    return {
        "recipient": digest.recipient,
        "as_of": digest.cycle.isoformat(),
        "summary": digest.summary,
        "counts": {s.value: digest.count(s) for s, _, _ in _GROUPS},
        "groups": _groups(digest, len(listed)),
        "total": len(digest.items),
        "more": len(digest.items) - len(listed),
        "list_command": shown(list_command(digest)),
        "escalation": digest.escalation,
        "escalated": any(i.escalated for i in digest.items),
        "escalate_after_days": escalate_after_days,
        "escalate_to": [c for c in escalate_to if c.casefold() != digest.recipient.casefold()],
        "cc": list(digest.cc),
        "record_command": shown(
            record_command(
                digest.items[0].document.path if digest.items else "FILE", digest.recipient
            )
        ),
        "last_reviewed_key": last_reviewed_key,
        "product": "review-scheduler",
        "subject": "",
    }


# Limits on rendering one digest with user templates: a template that loops for ever or writes
# without end is stopped with a TemplateError instead of holding the cycle (or the daemon).
RENDER_SECONDS = 10.0  # for the three parts of one digest
RENDER_MAX_CHARS = 2_000_000  # per part


class _LimitedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` refused when they would build something huge (the
    output cap only sees what is written, not a string built in one step)."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > RENDER_MAX_CHARS:
                    raise SecurityError("the result of '*' would be too large")
        if operator == "**" and isinstance(right, int) and abs(right) > 1000:
            raise SecurityError("the exponent of '**' is too large")
        return super().call_binop(context, operator, left, right)


class _OverTime(Exception):
    """Raised inside a template's frames when rendering runs past its deadline."""


def _template_line(exc: BaseException, files: Sequence[str]) -> tuple[str, int] | None:
    """The template file and line ``exc`` came from: Jinja2 rewrites tracebacks so that a
    template's frames carry its file name and line."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in files or any(name.endswith("/" + f) for f in TEMPLATE_NAMES):
            found = (name, tb.tb_lineno)
        tb = tb.tb_next
    return found


class DigestRenderer:
    """Renders digests from the built-in templates, overridden by those in ``override``.

    Rendering runs sandboxed, with undefined variables as errors, within :data:`RENDER_SECONDS`
    per digest and :data:`RENDER_MAX_CHARS` per part; any failure is a :class:`TemplateError`
    naming the template file and line. It may run in any thread (the cycle renders in a worker
    thread, off the daemon's event loop).
    """

    def __init__(
        self,
        override: Path | None = None,
        *,
        seconds: float = RENDER_SECONDS,
        max_chars: int = RENDER_MAX_CHARS,
    ) -> None:
        if override is not None and not override.is_dir():
            raise TemplateError(f"[mail] templates: {override} is not a folder")
        override = override.resolve() if override is not None else None
        folders = [str(override)] if override is not None else []
        folders.append(str(builtin_templates()))
        # The user's templates are watched for the deadline (the built-in ones are known to end)
        self._watched = f"{override}{os.sep}" if override is not None else None
        self._seconds = seconds
        self._max_chars = max_chars
        loader = jinja2.FileSystemLoader(folders)
        options: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
        }
        self._html = _LimitedEnvironment(
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
            **options,
        )
        self._text = _LimitedEnvironment(autoescape=False, **options)

    @cached_property
    def _templates(self) -> tuple[jinja2.Template, jinja2.Template, jinja2.Template]:
        try:
            return (
                self._text.get_template("subject.txt"),
                self._text.get_template("digest.txt"),
                self._html.get_template("digest.html"),
            )
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}"
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name} not found") from None

    def _part(self, template: jinja2.Template, context: dict[str, Any], deadline: float) -> str:
        """One part, written chunk by chunk so that its size is capped as it grows."""
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(digest=context):
            size += len(chunk)
            if size > self._max_chars:
                raise _TooLarge(template.filename or template.name or "?")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _OverTime
        return "".join(chunks)

    def render(self, context: dict[str, Any]) -> RenderedDigest:
        subject_t, text_t, html_t = self._templates
        files = [t.filename for t in (subject_t, text_t, html_t) if t.filename]
        deadline = time.monotonic() + self._seconds
        previous = sys.gettrace()
        if self._watched is not None:
            sys.settrace(_deadline_tracer(deadline, self._watched))
        try:
            subject = " ".join(self._part(subject_t, context, deadline).split())
            context = context | {"subject": subject}
            return RenderedDigest(
                subject,
                self._part(text_t, context, deadline),
                self._part(html_t, context, deadline),
            )
        except _OverTime as exc:
            where = _template_line(exc, files)
            at = f"template {where[0]}, line {where[1]}: " if where else ""
            raise TemplateError(
                f"{at}rendering a digest took longer than {self._seconds:g} s; is there a "
                "runaway loop?"
            ) from None
        except _TooLarge as exc:
            raise TemplateError(
                f"template {exc}: a digest part grew over {self._max_chars} characters"
            ) from None
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            where = _template_line(exc, files)
            if isinstance(exc, jinja2.TemplateSyntaxError):  # in an included template
                where = (exc.filename or exc.name or "?", exc.lineno)
            at = f"template {where[0]}, line {where[1]}" if where else "a digest template"
            message = exc.message if isinstance(exc, jinja2.TemplateError) else str(exc)
            raise TemplateError(f"{at}: {message or type(exc).__name__}") from None
        finally:
            if self._watched is not None:
                sys.settrace(previous)


class _TooLarge(Exception):
    pass


def _deadline_tracer(deadline: float, folder: str) -> Any:
    """A trace function (for this thread only) that stops a template's code once ``deadline``
    has passed: it raises :class:`_OverTime` inside the template's own frames, which may loop
    without writing anything. Only frames of templates in ``folder`` (the user's, included ones
    too) are traced, line by line: rendering them takes about five times as long."""
    monotonic = time.monotonic

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line" and monotonic() > deadline:
            raise _OverTime
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if event == "call" and frame.f_code.co_filename.startswith(folder):
            return local
        return None

    return tracer
