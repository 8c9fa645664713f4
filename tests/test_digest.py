"""Digest templates and messages: escaping, sandboxing, strictness, overrides, header safety."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import HeaderInjectionError, TemplateError
from scheduler.notify.channel import check_header, compose, message_id_for
from scheduler.notify.digest import DigestRenderer, digest_context
from scheduler.notify.email import build_message
from scheduler.notify.reminders import Digest, DigestItem
from scheduler.results import DocumentReport, Problem, Severity
from scheduler.review.state import State


def report(
    path: str,
    title: str,
    state: State,
    days: int | None,
    url: str | None = None,
    problems: tuple[Problem, ...] = (),
) -> DocumentReport:
    due = date(2026, 5, 1) if days is not None else None
    return DocumentReport(
        path,
        title,
        state,
        "active",
        date(2026, 2, 1),
        "quarterly",
        due,
        days,
        ("ed@example.org",),
        problems,
        3,
        url,
    )


DIGEST = Digest(
    "ed@example.org",
    date(2026, 5, 1),
    (
        DigestItem(
            report(
                "a.md",
                "Chemo <script>alert(1)</script> & you",
                State.OVERDUE,
                -40,
                "https://example.org/chemo?a=1&b=2",
            ),
            True,
            True,
        ),
        DigestItem(
            report(
                "b.md",
                "Broken page",
                State.INVALID,
                None,
                "javascript:alert(1)",
                (
                    Problem(
                        "b.md",
                        3,
                        "lastReviewed",
                        Severity.ERROR,
                        "'2026-02-30' is not a real date",
                        "use YYYY-MM-DD",
                    ),
                ),
            ),
            False,
            False,
        ),
        DigestItem(report("c.md", "Soon page", State.DUE_SOON, 0), False, False),
    ),
)


def render(override: Path | None = None) -> tuple[str, str, str]:
    rendered = DigestRenderer(override).render(
        digest_context(
            DIGEST,
            escalate_after_days=30,
            last_reviewed_key="lastReviewed",
            escalate_to=("boss@example.org",),
        )
    )
    return rendered.subject, rendered.text, rendered.html


def test_subject_carries_counts_never_titles() -> None:
    subject, _, _ = render()
    assert subject == "Review reminder: 1 overdue, 1 invalid, 1 due soon"


def test_text_part() -> None:
    _, text, _ = render()
    assert (
        text
        == """\
Hello,

These documents in your care need attention (2026-05-01): 1 overdue, 1 invalid, 1 due soon.

Marked [ESCALATED]: overdue for 30 days or more, and so reported
to boss@example.org.

OVERDUE (1)

* [NEW] [ESCALATED] Chemo <script>alert(1)</script> & you
  Overdue: was due 2026-05-01, 40 days ago
  File: a.md
  Page: https://example.org/chemo?a=1&b=2

METADATA ERRORS (1)

* Broken page
  The metadata has errors, so its review cannot be scheduled
  File: b.md
  - line 3: lastReviewed: '2026-02-30' is not a real date (use YYYY-MM-DD)

DUE SOON (1)

* Soon page
  Due soon: due 2026-05-01, today
  File: c.md

When you have reviewed a document, record the review with its file and one outcome
(this updates its lastReviewed date and keeps the evidence), for example:

  review-scheduler mark-reviewed a.md --by ed@example.org --outcome no-change|minor|major

Documents stay in this list until then.

--\x20
review-scheduler
"""
    )  # "-- " (with its space) is the standard signature separator


class _Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.sources: list[str] = []
        self.styled = 0
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "a":
            self.links.append(values.get("href") or "")
        if "src" in values:
            self.sources.append(values["src"] or "")
        if "style" in values:
            self.styled += 1

    def handle_data(self, data: str) -> None:
        self.text += data


def test_html_is_escaped_self_contained_and_links_only_http() -> None:
    _, _, html = render()
    assert "<script>" not in html
    assert "Chemo &lt;script&gt;alert(1)&lt;/script&gt; &amp; you" in html
    audit = _Audit()
    audit.feed(html)
    assert "Chemo <script>alert(1)</script> & you" in audit.text  # reads right once decoded
    assert not {"script", "link", "style", "img", "iframe", "object", "form"} & set(audit.tags)
    assert audit.sources == []  # no external assets
    assert audit.links == ["https://example.org/chemo?a=1&b=2"]  # not the javascript: one
    assert audit.styled > 10  # inline styles carry the layout
    assert "NEW" in audit.text and "boss@example.org" in audit.text


def test_templates_can_be_overridden_one_at_a_time(tmp_path: Path) -> None:
    (tmp_path / "subject.txt").write_text("[{{ digest.counts.overdue }} late] reviews\n")
    subject, text, _ = render(tmp_path)
    assert subject == "[1 late] reviews"
    assert text.startswith("Hello,")  # the built-in body is still used


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ digest.nonexistent }}", "has no attribute 'nonexistent'"),
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ digest.cc.append('evil@example.org') }}", "unsafe"),
        ("{% for %}", r"subject.txt, line 1: Expected an expression"),
    ],
    ids=["undefined", "dunder", "mutation", "syntax"],
)
def test_bad_or_hostile_templates_are_errors(tmp_path: Path, template: str, message: str) -> None:
    (tmp_path / "subject.txt").write_text(template)
    with pytest.raises(TemplateError, match=message):
        render(tmp_path)


def test_missing_template_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="is not a folder"):
        DigestRenderer(tmp_path / "nope")


def _message(**overrides: object) -> EmailMessage:
    subject, text, html = render()
    args: dict[str, object] = {
        "key": DIGEST.key,
        "channel": "email",
        "from_address": "reviews@example.org",
        "from_name": "Review Scheduler",
        "to": ["ed@example.org"],
        "cc": ["boss@example.org"],
        "subject": subject,
        "text": text,
        "html": html,
        "date": datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
    } | overrides
    notification = compose(**args)  # type: ignore[arg-type]
    parsed = message_from_bytes(build_message(notification), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_message_structure_and_stable_id() -> None:
    msg = _message()
    assert msg["From"] == "Review Scheduler <reviews@example.org>"
    assert (msg["To"], msg["Cc"]) == ("ed@example.org", "boss@example.org")
    assert msg["Date"] == "Fri, 01 May 2026 09:00:00 +0000"
    assert msg["Message-ID"] == message_id_for(DIGEST.key, "example.org")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert _message().as_bytes() == msg.as_bytes()  # pure: same input, same bytes


@pytest.mark.parametrize(
    "value",
    [
        "Reminder\r\nBcc: evil@example.org",
        "Reminder\nBcc: evil@example.org",
        "=?UTF-8?Q?=0A?=Bcc: evil@example.org",
        "Reminder\x00",
        "Reminder\x1b[31m",
    ],
)
def test_header_values_with_breaks_or_encoded_words_are_refused(value: str) -> None:
    with pytest.raises(HeaderInjectionError):
        check_header("Subject", value)
    with pytest.raises(HeaderInjectionError):
        _message(subject=value)


@pytest.mark.parametrize(
    "field",
    [
        {"to": ["ed@example.org\r\nBcc: evil@example.org"]},
        {"to": ["=?UTF-8?Q?=0A?=Bcc:evil@example.org"]},
        {"to": ["not an address"]},
        {"from_address": "reviews@example.org\nBcc: evil@example.org"},
        {"cc": ["boss@example.org\nBcc: evil@example.org"]},
        {"from_name": "Reviews\r\nBcc: evil@example.org"},
        {"from_name": "=?UTF-8?B?Cg==?=Bcc: evil@example.org"},
    ],
)
def test_addresses_and_names_cannot_add_headers(field: dict[str, object]) -> None:
    with pytest.raises(HeaderInjectionError):
        _message(**field)


def test_subject_template_that_leaks_a_hostile_title_is_refused(tmp_path: Path) -> None:
    (tmp_path / "subject.txt").write_text("{{ digest.groups[0].documents[0].title }}")
    hostile = Digest(
        "ed@example.org",
        date(2026, 5, 1),
        (
            DigestItem(
                report("a.md", "=?UTF-8?Q?=0A?=Bcc: evil@example.org", State.OVERDUE, -1),
                True,
                False,
            ),
        ),
    )
    rendered = DigestRenderer(tmp_path).render(
        digest_context(hostile, escalate_after_days=30, last_reviewed_key="lastReviewed")
    )
    with pytest.raises(HeaderInjectionError):
        _message(subject=rendered.subject)


# The messages version 0.1 built from these values, by SHA-256: a notification built at delivery
# must be byte for byte the same message (Message-ID, boundary, headers, encoding).
BUILT_BY_0_1: list[tuple[dict[str, Any], str]] = [
    (
        {
            "key": "digest:ed@example.org:2026-05-01",
            "from_address": "reviews@example.org",
            "from_name": "Review Scheduler",
            "to": ["ed@example.org"],
            "cc": ["boss@example.org", "lead@example.org"],
            "subject": "Review reminder: 1 overdue — ü",
            "text": "Hello,\n\n* Late page — überfällig\n",
            "html": "<p>Hello &amp; ü</p>\n",
            "date": datetime(2026, 5, 1, 9, tzinfo=UTC),
        },
        "92a36a7af8fb252161313dc0be5f4e09d7138229b546cd639cd924033d801f87",
    ),
    (
        {
            "key": "digest:team@example.org:2026-05-01",
            "from_address": "reviews@example.org",
            "from_name": "",
            "to": ["team@example.org"],
            "cc": [],
            "subject": "Review reminder: 2 overdue",
            "text": "x" * 200 + "\n",
            "html": "<p>h</p>",
            "date": datetime(2026, 5, 1, 9, 30, tzinfo=UTC),
        },
        "682ecebc03521b8c781eabdf0511273665047c6b4a518752ce2d23e3d3a71c8c",
    ),
]


@pytest.mark.parametrize(("args", "sha256"), BUILT_BY_0_1)
def test_messages_are_those_version_0_1_built(args: dict[str, Any], sha256: str) -> None:
    notification = compose(channel="email", **args)
    assert hashlib.sha256(build_message(notification)).hexdigest() == sha256


def test_a_prebuilt_message_is_sent_as_it_is() -> None:
    notification = compose(channel="email", **BUILT_BY_0_1[1][0])
    old = b"Subject: kept\r\n\r\nbody\r\n"
    assert build_message(dataclasses.replace(notification, prebuilt=old)) == old


def test_a_notification_lists_each_recipient_once() -> None:
    notification = compose(
        channel="email",
        **BUILT_BY_0_1[0][0] | {"cc": ["boss@example.org", "ed@example.org"]},
    )
    assert notification.recipients == ("ed@example.org", "boss@example.org")
    assert notification.message_id == message_id_for(notification.key, "example.org")
    assert notification.header("date") == "Fri, 01 May 2026 09:00:00 +0000"


def test_edit_and_view_links_beside_each_document_http_only() -> None:
    linked = dataclasses.replace(
        report("a b.md", "Linked page", State.OVERDUE, -3),
        links=(
            ("edit_url", "https://git.example.org/edit/a%20b.md"),
            ("view_url", "javascript:alert(1)"),
        ),
    )
    digest = Digest("ed@example.org", date(2026, 5, 1), (DigestItem(linked, True, False),))
    rendered = DigestRenderer().render(
        digest_context(digest, escalate_after_days=30, last_reviewed_key="lastReviewed")
    )
    assert "  Edit: https://git.example.org/edit/a%20b.md\n" in rendered.text
    assert '<a href="https://git.example.org/edit/a%20b.md"' in rendered.html
    assert "javascript" not in rendered.text + rendered.html and "Source" not in rendered.text
    assert (
        "  review-scheduler mark-reviewed 'a b.md' --by ed@example.org --outcome"
        " no-change|minor|major\n" in rendered.text
    )


def _long_digest(overdue: int, soon: int, escalation: bool = False) -> Digest:
    items = [
        DigestItem(report(f"over-{n:04}.md", f"Overdue {n}", State.OVERDUE, -n - 1), False, False)
        for n in range(overdue)
    ] + [
        DigestItem(report(f"soon-{n:04}.md", f"Soon {n}", State.DUE_SOON, n), False, False)
        for n in range(soon)
    ]
    return Digest("ed@example.org", date(2026, 5, 1), tuple(items), escalation=escalation)


def test_a_long_digest_lists_the_most_urgent_and_says_how_to_list_the_rest() -> None:
    """Thousands of outstanding documents for one editor make one readable message (mail
    clients clip long ones), not a template over its size limit that queues no digest at all."""
    digest = _long_digest(overdue=2950, soon=50)
    context = digest_context(digest, escalate_after_days=30, last_reviewed_key="lastReviewed")
    assert context["total"] == 3000 and context["more"] == 2900
    overdue, soon = context["groups"]
    assert (overdue["total"], len(overdue["documents"]), overdue["more"]) == (2950, 100, 2850)
    assert (soon["total"], soon["documents"], soon["more"]) == (50, [], 50)
    # The most urgent first: the digest's own order.
    assert overdue["documents"][0]["path"] == "over-0000.md"
    rendered = DigestRenderer(None).render(context)
    for part in (rendered.text, rendered.html):
        listed = part.count("over-0") - part.count("mark-reviewed over-0")  # less the example
        assert listed == 100 and "soon-0" not in part
        assert "2850 more, not listed here" in part and "50 more, not listed here" in part
        assert "100 most urgent of these 3000 documents" in part
        assert "check-reviews --editor ed@example.org --state overdue,invalid,due_soon" in part
    assert "OVERDUE (2950)" in rendered.text and "Overdue (2950)" in rendered.html
    assert rendered.subject == "Review reminder: 2950 overdue, 50 due soon"
    assert len(rendered.html) < 102_000  # under the size at which Gmail clips a message


def test_a_short_digest_lists_everything_and_mentions_no_rest() -> None:
    digest = _long_digest(overdue=60, soon=40)
    rendered = DigestRenderer(None).render(
        digest_context(digest, escalate_after_days=30, last_reviewed_key="lastReviewed")
    )
    for part in (rendered.text, rendered.html):
        listed = part.count("over-00") - part.count("mark-reviewed over-00")
        assert listed == 60 and part.count("soon-00") == 40
        assert "not listed here" not in part and "most urgent" not in part


def test_a_long_escalation_digest_points_at_the_overdue_list() -> None:
    digest = _long_digest(overdue=150, soon=0, escalation=True)
    context = digest_context(
        digest, escalate_after_days=30, last_reviewed_key="lastReviewed", max_items=20
    )
    (group,) = context["groups"]
    assert (group["total"], len(group["documents"]), group["more"]) == (150, 20, 130)
    rendered = DigestRenderer(None).render(context)
    assert "check-reviews --state overdue" in rendered.text


def test_a_cycle_reports_repr_is_its_summary_whatever_its_size() -> None:
    """Python 3.11's asyncio.run writes out the repr of a cycle's result twice as it ends: the
    default repr of a 100,000-document cycle was hundreds of megabytes (its peak memory 276 MiB
    instead of 163), built for nothing."""
    from scheduler.notify.reminders import Plan
    from scheduler.runtime.cycle import CycleReport

    digest = _long_digest(overdue=5000, soon=0)
    cycle = CycleReport(date(2026, 5, 1), 5000, 5000, Plan((digest,), (), ()), {})
    shown = repr(cycle)
    assert len(shown) < 300
    assert shown.startswith("CycleReport(as_of=2026-05-01, {'documents': 5000, 'outstanding': 5000")
