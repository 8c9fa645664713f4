"""Reminder cycles plan from where each document stands and build full reports only for the
documents a digest lists: what they decide, queue, record and send is what full reports give.

Each test runs real cycles (``send``, a real SQLite store, the .eml outbox) over a library
edited between the days, and before each one compares the cycle's way with the full one
(``check`` and ``plan_reminders`` over every document's report) from the same store.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import Settings, load_settings
from scheduler.notify.digest import DigestRenderer, digest_context
from scheduler.notify.outbox import Outbox
from scheduler.notify.reminders import OUTSTANDING, Digest, DigestItem, Plan, plan_reminders
from scheduler.results import Evidence
from scheduler.runtime.cycle import compose, plan_cycle, reminder_policy
from scheduler.store import open_read_only, store_exists
from scheduler.usecases.check import check
from scheduler.usecases.reviews import evidence, observed
from scheduler.usecases.standings import few_collections, survey

from .conftest import frontmatter, write_doc

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

CONFIG = """\
[content]
root = "docs"
{content}
[routing]
default = ["team@example.org"]
[routing.aliases]
"#leads" = ["lead@example.org"]
[reminders]
escalate_to = ["#leads"]
max_documents_per_digest = 2
[mail]
from_address = "reviews@example.org"
{extra}
"""

VARIANTS = {
    "all documents, edit links": ("", '[links]\nedit_url = "https://git.example.org/e/{path}"\n'),
    "declared scope": ('scope = "declared"', ""),
}


def _library(root: Path, variant: str) -> None:
    content, extra = VARIANTS[variant]
    write_doc(root / "config" / "scheduler.toml", CONFIG.format(content=content, extra=extra))
    docs = root / "docs"
    for index in range(7):  # more than a digest lists
        write_doc(
            docs / f"late-{index}.md",
            frontmatter(
                title=f"Late {index}", lastReviewed=f"2026-01-{10 + index}", owner="Ed@example.org"
            ),
        )
    write_doc(
        docs / "soon.md",
        frontmatter(title="Soon", lastReviewed="2026-02-20", owner="ed@example.org"),
    )
    write_doc(docs / "fine.md", frontmatter(title="Fine", lastReviewed="2026-04-20"))
    write_doc(docs / "ancient.md", frontmatter(title="Ancient", lastReviewed="2025-06-01"))
    write_doc(docs / "bad-date.md", frontmatter(title="Bad", lastReviewed="2026-02-30"))
    write_doc(docs / "future.md", frontmatter(title="Future", lastReviewed="2026-09-01"))
    write_doc(docs / "archived.md", frontmatter(title="Archived", status="archived"))
    write_doc(docs / "no-owner-field.md", frontmatter(title="Team page", lastReviewed="2026-01-02"))
    write_doc(docs / "notes.md", "No frontmatter at all.\n")
    write_doc(docs / "bare.md", "---\ntitle: Only a title\n---\nBody.\n")
    write_doc(
        docs / os.fsdecode(b"caf\xe9.md"), frontmatter(title="Caf\u00e9", lastReviewed="2026-01-05")
    )
    write_doc(
        docs / "sub" / "deep.md",
        frontmatter(title="Deep", lastReviewed="2026-03-01", owner="Ed@Example.org"),
    )


def _edit(root: Path, step: int, run: Any) -> None:
    """What editors do between two cycles."""
    docs = root / "docs"
    if step == 0:
        late = docs / "late-0.md"  # the date moved by hand, nothing else
        late.write_text(late.read_text().replace("2026-01-10", "2026-05-01"))
        bad = docs / "bad-date.md"  # fixed
        bad.write_text(bad.read_text().replace("2026-02-30", "2026-02-28"))
        fine = docs / "fine.md"  # broken
        fine.write_text(fine.read_text().replace("2026-04-20", "2026-13-01"))
        (docs / "sub" / "deep.md").unlink()
        write_doc(
            docs / "new.md",
            frontmatter(title="New", lastReviewed="2026-01-01", owner="ed@example.org"),
        )
        snooze = ("snooze", "docs/late-1.md", "--until", "2026-05-20", "--reason", "rewrite")
        assert run(*snooze, "--as-of", "2026-05-02").code == 0
        stamp = (
            "mark-reviewed",
            "docs/late-2.md",
            "--as-of",
            "2026-05-02",
            "--by",
            "ed@example.org",
        )
        assert run(*stamp).code == 0  # a rubber stamp: nothing else changed, no outcome
    elif step == 1:
        late = docs / "late-3.md"  # the date moved by hand and the page updated
        late.write_text(late.read_text().replace("2026-01-13", "2026-05-03") + "More.\n")


def _shape(item: DigestItem) -> tuple[object, ...]:
    doc = item.document
    return (
        doc.path,
        doc.state,
        doc.due,
        doc.days_until_due,
        doc.editors,
        doc.snoozed,
        item.new,
        item.escalated,
    )


def _digest_shape(digest: Digest) -> tuple[object, ...]:
    return (
        digest.recipient,
        digest.key,
        digest.escalation,
        digest.cc,
        [_shape(item) for item in digest.items],
    )


def _compare(settings: Settings, cwd: Path, today: date) -> Plan:
    """The cycle's way and the full one agree on everything a cycle decides and records."""
    if store_exists(settings.store, cwd):
        with open_read_only(settings.store, cwd) as store:
            ledger, known, seen = (
                Outbox(store).ledger(),
                evidence(store, today),
                store.reviews.seen(),
            )
    else:
        ledger, known, seen = {}, Evidence(), {}
    found, plan = plan_cycle(settings, cwd, today, ledger, known, write=False)
    full = check(settings, [], cwd, today, evidence=known)
    reference = plan_reminders(full.documents, ledger, today, reminder_policy(settings))

    # every document, in report order, standing as its full report says
    assert [
        (d.path, d.state, d.due, d.days_until_due, d.editors, d.last_reviewed, d.snoozed)
        for d in found.documents
    ] == [
        (r.path, r.state, r.due, r.days_until_due, r.editors, r.last_reviewed, r.snoozed)
        for r in full.documents
    ]
    assert found.outstanding == sum(r.state in OUTSTANDING for r in full.documents)
    outstanding = [r for r in full.documents if r.state in OUTSTANDING]
    assert [found.report(d) for d in found.documents if d.state in OUTSTANDING] == outstanding
    for doc in found.documents:
        if doc.state not in OUTSTANDING:
            with pytest.raises(ValueError, match="is not outstanding"):
                found.report(doc)
    # the same digests, items, ledger entries and forgotten entries
    assert [_digest_shape(d) for d in plan.digests] == [_digest_shape(d) for d in reference.digests]
    assert (plan.remember, plan.forget) == (reference.remember, reference.forget)
    listed = settings.reminders.max_documents_per_digest
    for ours, theirs in zip(plan.digests, reference.digests, strict=True):
        assert [i.document for i in ours.items[:listed]] == [
            i.document for i in theirs.items[:listed]
        ]
    # the same messages, byte for byte, and the same hand edits noticed
    assert compose(settings, plan, NOW) == compose(settings, reference, NOW)
    assert observed(seen, found.documents, cwd, settings, NOW) == observed(
        seen, full.documents, cwd, settings, NOW
    )
    return plan


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cycles_over_an_edited_library_decide_what_full_reports_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any, variant: str
) -> None:
    _library(tmp_path, variant)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(tmp_path / "config" / "scheduler.toml", tmp_path)
    days = [
        date(2026, 5, 1),
        date(2026, 5, 2),
        date(2026, 5, 3),
        date(2026, 5, 9),
        date(2026, 6, 20),
    ]
    digests = 0
    for step, today in enumerate(days):
        plan = _compare(settings, tmp_path, today)
        digests += len(plan.digests)
        result = run("send", "--as-of", today.isoformat())
        assert result.code == 0, result.err
        _compare(settings, tmp_path, today)  # a second cycle the same day
        assert run("send", "--as-of", today.isoformat()).out.count("Queued 0 digests.") == 1
        _edit(tmp_path, step, run)
    assert digests >= 8  # editors', the team's, escalation digests, over several days
    kinds = {e["kind"] for e in _history(run)}
    assert {"reminded", "edited-outside", "reviewed", "snoozed"} <= kinds


def _history(run: Any) -> list[dict[str, Any]]:
    result = run("history", "--format", "json")
    assert result.code == 0, result.err
    return [entry for doc in json.loads(result.out)["documents"] for entry in doc["entries"]]


def test_a_digest_lists_only_full_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _library(tmp_path, "all documents, edit links")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(tmp_path / "config" / "scheduler.toml", tmp_path)
    today = date(2026, 5, 1)
    found = survey(settings, tmp_path, today, Evidence(), use_cache=False)
    light = plan_reminders(found.documents, {}, today, reminder_policy(settings))
    digest = next(d for d in light.digests if len(d.items) > 2)
    context: dict[str, Any] = {
        "escalate_after_days": 30,
        "last_reviewed_key": "lastReviewed",
        "max_items": 2,
    }
    with pytest.raises(TypeError, match="without its full report"):
        digest_context(digest, **context)  # planned from light records, not completed
    _, plan = plan_cycle(settings, tmp_path, today, {}, Evidence(), write=False)
    (completed,) = [d for d in plan.digests if d.key == digest.key]
    rendered = DigestRenderer().render(digest_context(completed, **context))
    assert "Late 0" in rendered.text and "https://git.example.org/e/docs/late-0.md" in rendered.html
    assert completed.items[2:] == digest.items[2:]  # only counted: left light


def test_few_collections_restores_the_thresholds() -> None:
    import gc

    before = gc.get_threshold()
    with pytest.raises(RuntimeError), few_collections():
        assert gc.get_threshold() == (100_000, 50, 100)
        raise RuntimeError
    assert gc.get_threshold() == before


@pytest.mark.parametrize("templates", [None, "missing-templates"])
def test_a_cycle_leaves_the_collector_as_it_found_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any, templates: str | None
) -> None:
    import gc

    _library(tmp_path, "all documents, edit links")
    if templates is not None:  # the digests cannot be rendered: the cycle fails after planning
        config = tmp_path / "config" / "scheduler.toml"
        config.write_text(
            config.read_text().replace("[mail]\n", f'[mail]\ntemplates = "{templates}"\n')
        )
    monkeypatch.chdir(tmp_path)
    before = gc.get_threshold()
    result = run("send", "--as-of", "2026-05-01")
    assert result.code == (0 if templates is None else 2), result.err
    assert "Reminder cycle for 2026-05-01" in result.out  # it ran, and ended
    assert gc.get_threshold() == before
