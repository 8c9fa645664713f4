"""The reminder policy over sequences of days (pure: no store, no clock)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from scheduler.content.cadence import Cadence, due_date
from scheduler.notify.reminders import Digest, LedgerEntry, Plan, ReminderPolicy, plan_reminders
from scheduler.results import DocumentReport
from scheduler.review.state import ReviewPolicy, State, state_on

POLICY = ReminderPolicy(
    remind_every_days=7, escalate_after_days=30, escalate_to=("boss@example.org",)
)
REVIEW = ReviewPolicy(30, frozenset({"active"}))


def doc(
    path: str,
    last_reviewed: date | None,
    today: date,
    editors: tuple[str, ...] = ("ed@example.org",),
    invalid: bool = False,
    months: int = 3,
) -> DocumentReport:
    due = due_date(last_reviewed, Cadence(months=months))
    review = state_on(due, "active" if last_reviewed else None, invalid, today, REVIEW)
    return DocumentReport(
        path,
        path.upper(),
        review.state,
        "active",
        last_reviewed,
        "quarterly",
        review.due,
        review.days_until_due,
        editors,
        (),
    )


class Ledger(dict[tuple[str, str], LedgerEntry]):
    """What the store does with a plan, in memory."""

    def apply(self, plan: Plan) -> None:
        for entry in plan.remember:
            self[(entry.recipient, entry.path)] = entry
        for key in plan.forget:
            self.pop(key, None)


def run_days(
    start: date,
    end: date,
    documents: Callable[[date], list[DocumentReport]],
    ledger: Ledger | None = None,
) -> dict[date, tuple[Digest, ...]]:
    ledger = Ledger() if ledger is None else ledger
    sent = {}
    day = start
    while day <= end:
        plan = plan_reminders(documents(day), ledger, day, POLICY)
        ledger.apply(plan)
        if plan.digests:
            sent[day] = plan.digests
        day += timedelta(days=1)
    return sent


def test_due_soon_then_overdue_then_weekly_then_escalation() -> None:
    # last reviewed 2026-01-15, quarterly: due 2026-04-15, due soon from 2026-03-16
    sent = run_days(
        date(2026, 3, 1), date(2026, 5, 31), lambda day: [doc("a.md", date(2026, 1, 15), day)]
    )
    summary = {
        day: [
            (
                d.recipient,
                d.escalation,
                [(i.document.state.value, i.new, i.escalated) for i in d.items],
            )
            for d in digests
        ]
        for day, digests in sent.items()
    }
    editor = "ed@example.org"
    assert summary == {
        date(2026, 3, 16): [(editor, False, [("due_soon", True, False)])],
        date(2026, 4, 16): [(editor, False, [("overdue", True, False)])],
        date(2026, 4, 23): [(editor, False, [("overdue", False, False)])],
        date(2026, 4, 30): [(editor, False, [("overdue", False, False)])],
        date(2026, 5, 7): [(editor, False, [("overdue", False, False)])],
        date(2026, 5, 14): [(editor, False, [("overdue", False, False)])],
        # 30 days overdue: the managing editor gets an escalation digest of their own, and the
        # editor hears the same day that the document was escalated
        date(2026, 5, 15): [
            ("boss@example.org", True, [("overdue", True, True)]),
            (editor, False, [("overdue", False, True)]),
        ],
        date(2026, 5, 22): [
            ("boss@example.org", True, [("overdue", False, True)]),
            (editor, False, [("overdue", False, True)]),
        ],
        date(2026, 5, 29): [
            ("boss@example.org", True, [("overdue", False, True)]),
            (editor, False, [("overdue", False, True)]),
        ],
    }
    assert all(d.cc == () for digests in sent.values() for d in digests)  # nobody is copied


def test_one_escalation_digest_per_contact_lists_every_escalated_document() -> None:
    today = date(2026, 6, 1)
    docs = [
        doc(f"{name}.md", date(2026, 1, 1), today, editors=(f"{name}@example.org",))
        for name in ("ann", "bob", "cat", "dan", "eve", "fay", "gus")
    ]
    docs.append(doc("fresh.md", date(2026, 5, 1), today))
    plan = plan_reminders(docs, Ledger(), today, POLICY)
    escalations = [d for d in plan.digests if d.escalation]
    assert [(d.recipient, d.key) for d in escalations] == [
        ("boss@example.org", "escalation:boss@example.org:2026-06-01")
    ]
    assert [i.document.path for i in escalations[0].items] == [
        f"{n}.md" for n in ("ann", "bob", "cat", "dan", "eve", "fay", "gus")
    ]
    editors = [d for d in plan.digests if not d.escalation]
    assert len(editors) == 7 and all(d.cc == () for d in editors)
    assert all(i.escalated for d in editors for i in d.items)


def test_two_runs_on_one_day_send_once() -> None:
    ledger = Ledger()
    today = date(2026, 4, 20)
    docs = [doc("a.md", date(2026, 1, 1), today), doc("b.md", date(2026, 1, 25), today)]
    first = plan_reminders(docs, ledger, today, POLICY)
    ledger.apply(first)
    second = plan_reminders(docs, ledger, today, POLICY)
    assert len(first.digests) == 1 and second.digests == ()


def test_digest_lists_everything_outstanding_in_order_and_marks_new() -> None:
    today = date(2026, 5, 1)
    ledger = Ledger()
    # yesterday the editor heard about the slightly overdue document
    ledger[("ed@example.org", "late.md")] = LedgerEntry(
        "ed@example.org", "late.md", date(2026, 4, 28), State.OVERDUE, date(2026, 4, 29)
    )
    docs = [
        doc("soon-b.md", date(2026, 2, 20), today),  # due 05-20
        doc("soon-a.md", date(2026, 2, 10), today),  # due 05-10
        doc("late.md", date(2026, 1, 28), today),  # due 04-28
        doc("very-late.md", date(2025, 12, 1), today),  # due 03-01: new, escalated
        doc("broken.md", None, today, invalid=True),
        doc("ok.md", date(2026, 4, 1), today),
        doc("someone-else.md", date(2025, 12, 1), today, editors=("other@example.org",)),
    ]
    plan = plan_reminders(docs, ledger, today, POLICY)
    mine = next(d for d in plan.digests if d.recipient == "ed@example.org")
    assert [(i.document.path, i.new) for i in mine.items] == [
        ("very-late.md", True),
        ("late.md", False),
        ("broken.md", True),
        ("soon-a.md", True),
        ("soon-b.md", True),
    ]
    assert mine.summary == "2 overdue, 1 invalid, 2 due soon"
    assert mine.cc == ()
    assert [i.escalated for i in mine.items] == [True, False, False, False, False]
    assert mine.key == "digest:ed@example.org:2026-05-01"
    assert [(d.recipient, d.escalation) for d in plan.digests] == [
        ("boss@example.org", True),
        ("ed@example.org", False),
        ("other@example.org", False),
    ]


def test_only_triggers_send_but_the_digest_lists_all() -> None:
    today = date(2026, 5, 1)
    ledger = Ledger()
    docs = [doc("late.md", date(2026, 1, 28), today)]
    ledger[("ed@example.org", "late.md")] = LedgerEntry(
        "ed@example.org", "late.md", date(2026, 4, 28), State.OVERDUE, date(2026, 4, 29)
    )
    assert plan_reminders(docs, ledger, today, POLICY).digests == ()  # reminded 2 days ago
    docs.append(doc("new-soon.md", date(2026, 2, 10), today))
    (digest,) = plan_reminders(docs, ledger, today, POLICY).digests
    assert [i.document.path for i in digest.items] == ["late.md", "new-soon.md"]


def test_a_re_reviewed_document_drops_out_and_starts_afresh() -> None:
    reviewed_on: dict[str, date] = {"a.md": date(2026, 1, 15), "b.md": date(2026, 1, 20)}

    def documents(day: date) -> list[DocumentReport]:
        if day == date(2026, 4, 20):
            reviewed_on["a.md"] = day  # the editor re-reviews a.md
        return [doc(p, d, day) for p, d in reviewed_on.items()]

    ledger = Ledger()
    sent = run_days(date(2026, 4, 16), date(2026, 4, 30), documents, ledger)
    listed = {day: [i.document.path for i in ds[0].items] for day, ds in sent.items()}
    assert listed == {
        date(2026, 4, 16): ["a.md", "b.md"],  # a overdue (1 day), b due soon
        date(2026, 4, 21): ["b.md"],  # b overdue; a was re-reviewed and is gone
        date(2026, 4, 28): ["b.md"],
    }
    assert ("ed@example.org", "a.md") not in ledger
    # when a.md is next due soon (2026-06-20), it is new again
    soon = plan_reminders(documents(date(2026, 6, 20)), ledger, date(2026, 6, 20), POLICY)
    [mine] = [d for d in soon.digests if d.recipient == "ed@example.org"]
    assert [(i.document.path, i.new) for i in mine.items] == [
        ("b.md", False),
        ("a.md", True),
    ]


def test_invalid_documents_are_reminded_like_overdue_ones() -> None:
    sent = run_days(
        date(2026, 5, 1), date(2026, 5, 16), lambda day: [doc("broken.md", None, day, invalid=True)]
    )
    assert list(sent) == [date(2026, 5, 1), date(2026, 5, 8), date(2026, 5, 15)]


def test_fixing_an_invalid_document_into_overdue_is_news() -> None:
    ledger = Ledger()
    day = date(2026, 5, 1)
    ledger.apply(plan_reminders([doc("x.md", None, day, invalid=True)], ledger, day, POLICY))
    later = day + timedelta(days=2)
    plan = plan_reminders([doc("x.md", date(2026, 1, 1), later)], ledger, later, POLICY)
    assert [(i.document.state, i.new) for i in plan.digests[0].items] == [(State.OVERDUE, True)]


def test_unowned_documents_go_to_the_escalation_contacts() -> None:
    today = date(2026, 5, 1)
    plan = plan_reminders(
        [doc("orphan.md", date(2026, 1, 1), today, editors=())], Ledger(), today, POLICY
    )
    assert [(d.recipient, d.cc) for d in plan.digests] == [("boss@example.org", ())]


def test_preview_lists_without_a_trigger() -> None:
    today = date(2026, 5, 1)
    ledger = Ledger()
    docs = [doc("late.md", date(2026, 1, 28), today)]
    ledger.apply(plan_reminders(docs, ledger, today, POLICY))
    preview = plan_reminders(docs, ledger, today, POLICY, recipients=["ED@example.org"])
    assert [d.recipient for d in preview.digests] == ["ed@example.org"]
    assert preview.forget == ()


@pytest.mark.parametrize("every", [1, 3, 14])
def test_remind_every_days_is_respected(every: int) -> None:
    policy = ReminderPolicy(every, 1000)
    ledger = Ledger()
    days = []
    for offset in range(30):
        day = date(2026, 5, 1) + timedelta(days=offset)
        plan = plan_reminders([doc("a.md", date(2026, 1, 1), day)], ledger, day, policy)
        ledger.apply(plan)
        if plan.digests:
            days.append(offset)
    assert days == list(range(0, 30, every))


def test_a_name_that_is_not_utf8_is_remembered_like_any_other() -> None:
    name = os.fsdecode(b"caf\xe9.md")  # as the file system hands it over
    ledger = Ledger()
    sent = run_days(
        date(2026, 3, 1),
        date(2026, 5, 31),
        lambda day: [doc(name, date(2026, 1, 15), day)],
        ledger,
    )
    assert sorted(ledger) == [  # storable as UTF-8 text
        ("ed@example.org", r"caf\xe9.md"),
        ("escalation:boss@example.org", r"caf\xe9.md"),
    ]
    plain = run_days(
        date(2026, 3, 1), date(2026, 5, 31), lambda day: [doc("a.md", date(2026, 1, 15), day)]
    )
    assert list(sent) == list(plain)  # reminded on the same days: never new again by mistake
