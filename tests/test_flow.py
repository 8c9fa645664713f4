"""The loop closed, over simulated days, through the commands: real files, a real SQLite state
store and real messages in the outbox folder.

A document is overdue, reminded, marked reviewed, then gone from the next digest and report with
the review in its history; another is snoozed, absent from digests, and back after the date; the
overdue documents of two editors reach the escalation contact as one escalation digest; and
every dry run predicts exactly what the real run then queues.
"""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from .conftest import frontmatter, write_doc

CONFIG = """\
[content]
root = "docs"
[reminders]
escalate_after_days = 30
escalate_to = ["lead@example.org"]
[links]
edit_url = "https://git.example.org/library/edit/main/{path}"
[mail]
from_address = "reviews@example.org"
"""


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    docs = {
        "overdue.md": ("2026-01-15", "ed@example.org"),  # due 04-15
        "paused.md": ("2026-01-20", "ann@example.org"),  # due 04-20
        "old-ed.md": ("2025-12-01", "ed@example.org"),  # due 03-01: escalated
        "old-bob.md": ("2025-12-01", "bob@example.org"),  # due 03-01: escalated
    }
    for name, (reviewed, owner) in docs.items():
        write_doc(
            tmp_path / "docs" / name,
            frontmatter(title=name.removesuffix(".md"), lastReviewed=reviewed, owner=owner),
        )
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Outbox:
    """The .eml files written so far, and those each run adds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: set[Path] = set()

    def new(self) -> list[EmailMessage]:
        files = set(self.folder.glob("*.eml")) if self.folder.is_dir() else set()
        added, self.seen = files - self.seen, files
        messages = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in added]
        return sorted(messages, key=lambda m: (str(m["To"]), str(m["Subject"])))


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def send_day(run: Any, outbox: Outbox, day: str) -> list[EmailMessage]:
    """A dry run, then the real cycle: the dry run names exactly the digests the cycle queues."""
    dry = run("send", "--as-of", day, "--dry-run")
    assert dry.code == 0, dry.err
    predicted = [
        (block.split("\n")[0], block.split("\n")[1]) for block in dry.out.split("To: ")[1:]
    ]
    real = run("send", "--as-of", day)
    assert real.code == 0, real.err
    sent = outbox.new()
    assert sorted(predicted) == [(str(m["To"]), f"Subject: {m['Subject']}") for m in sent], (
        f"{day}: the dry run predicted {predicted}"
    )
    assert all(m["Cc"] is None for m in sent)  # nobody is copied: escalations go on their own
    return sent


def report(run: Any, day: str) -> dict[str, Any]:
    result = run("--as-of", day, "--format", "json", "--fail-on", "never", prog="check-reviews")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def by_path(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {doc["path"]: doc for doc in data["documents"]}


def test_reminded_reviewed_snoozed_escalated_over_days(library: Path, run: Any) -> None:
    outbox = Outbox(library / ".review-scheduler" / "outbox")

    # 2026-05-01: everything is overdue; old-ed and old-bob for 61 days, so escalated
    day1 = send_day(run, outbox, "2026-05-01")
    assert [(str(m["To"]), str(m["Subject"])) for m in day1] == [
        ("ann@example.org", "Review reminder: 1 overdue"),
        ("bob@example.org", "Review reminder: 1 overdue"),
        ("ed@example.org", "Review reminder: 2 overdue"),
        ("lead@example.org", "Escalation: 2 overdue for 30 days or more"),
    ]
    escalation = text_of(day1[3])
    assert "EDITOR: BOB@EXAMPLE.ORG (1)\n\n* [NEW] old-bob\n" in escalation
    assert "EDITOR: ED@EXAMPLE.ORG (1)\n\n* [NEW] old-ed\n" in escalation
    ed = text_of(day1[2])
    assert "* [NEW] [ESCALATED] old-ed\n" in ed
    assert "and so reported\nto lead@example.org." in ed
    assert "  Edit: https://git.example.org/library/edit/main/docs/overdue.md\n" in ed
    assert "review-scheduler mark-reviewed docs/old-ed.md --by ed@example.org" in ed

    # the editors act: ed reviews overdue.md, ann snoozes paused.md
    marked = run(
        "mark-reviewed", "docs/overdue.md", "--as-of", "2026-05-01", "--by", "ed@example.org",
        "--outcome", "minor", "--note", "new trial results",
    )  # fmt: skip
    assert marked.code == 0, marked.err
    snoozed = run(
        "snooze", "docs/paused.md", "--as-of", "2026-05-01", "--until", "2026-05-20",
        "--reason", "new national guidance due in May", "--by", "ann@example.org",
    )  # fmt: skip
    assert snoozed.code == 0, snoozed.err

    # 2026-05-02: the report shows the review and the snooze
    docs = by_path(report(run, "2026-05-02"))
    assert docs["docs/overdue.md"]["state"] == "ok"
    assert docs["docs/overdue.md"]["last_reviewed"] == "2026-05-01"
    assert docs["docs/paused.md"]["state"] == "overdue"
    assert docs["docs/paused.md"]["snoozed"] == {
        "until": "2026-05-20",
        "reason": "new national guidance due in May",
    }
    assert "snoozed" not in docs["docs/old-ed.md"]
    assert docs["docs/old-ed.md"]["edit_url"] == (
        "https://git.example.org/library/edit/main/docs/old-ed.md"
    )
    assert report(run, "2026-05-02")["summary"]["snoozed"] == 1
    assert send_day(run, outbox, "2026-05-02") == []

    # 2026-05-08: a week on; overdue.md is gone from ed's digest and paused.md from everyone's
    day8 = send_day(run, outbox, "2026-05-08")
    assert [str(m["To"]) for m in day8] == [
        "bob@example.org",
        "ed@example.org",
        "lead@example.org",
    ]
    ed = text_of(day8[1])
    assert "old-ed" in ed and "overdue.md" not in ed
    assert all("paused" not in text_of(m) for m in day8)

    # later the same day a document of ed's breaks: the cycle would list it, but ed's digest
    # for the day is queued already, and the dry run says so as the cycle does
    write_doc(
        library / "docs" / "overdue.md",
        frontmatter(title="x", lastReviewed="2026-13-01", owner="ed@example.org"),
    )
    dry = run("send", "--as-of", "2026-05-08", "--dry-run")
    assert dry.out.endswith("0 digests would be queued (1 already queued earlier this cycle).\n"), (
        dry.out
    )
    real = run("send", "--as-of", "2026-05-08")
    assert "Queued 0 digests (1 already queued earlier this cycle).\n" in real.out
    assert outbox.new() == []

    # 2026-05-20: the snooze ends and paused.md is back, as new
    day20 = send_day(run, outbox, "2026-05-20")
    ann = [m for m in day20 if m["To"] == "ann@example.org"]
    assert len(ann) == 1
    assert "* [NEW] [ESCALATED] paused\n" in text_of(ann[0])
    assert "snoozed" not in by_path(report(run, "2026-05-20"))["docs/paused.md"]

    # the history holds the evidence
    history = json.loads(run("history", "docs/overdue.md", "--format", "json").out)
    [document] = history["documents"]
    kinds = [(e["kind"], e["editor"], e["outcome"], e["note"]) for e in document["entries"]]
    assert kinds == [
        ("reminded", "ed@example.org", None, "overdue"),
        ("reviewed", "ed@example.org", "minor", "new trial results"),
        ("reminded", "ed@example.org", None, "invalid"),  # broken by hand on 05-08
    ]
    paused = json.loads(run("history", "docs/paused.md", "--format", "json").out)
    assert [(e["kind"], e["editor"], e["note"]) for e in paused["documents"][0]["entries"]] == [
        ("reminded", "ann@example.org", "overdue"),
        ("snoozed", "ann@example.org", "new national guidance due in May"),
        ("reminded", "ann@example.org", "overdue"),
        ("reminded", "lead@example.org", "escalation digest: overdue"),
    ]


def test_edit_links_name_the_same_file_from_any_folder(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``{path}`` is relative to the config file's folder (``[links] base``), not to wherever
    the command runs: run from docs/, links used to lose the docs/ part."""
    expected = "https://git.example.org/library/edit/main/docs/old-ed.md"
    assert by_path(report(run, "2026-05-01"))["docs/old-ed.md"]["edit_url"] == expected
    config = library / "config" / "scheduler.toml"
    monkeypatch.setenv("SCHEDULER_CONFIG", str(config))  # config/scheduler.toml is not searched
    monkeypatch.chdir(library / "docs")
    assert by_path(report(run, "2026-05-01"))["old-ed.md"]["edit_url"] == expected
    # A base of its own, relative to the config's folder (for config/scheduler.toml, the
    # folder holding config/).
    config.write_text(CONFIG.replace("[links]\n", '[links]\nbase = "docs"\n'))
    (library / "docs" / "sub").mkdir()
    monkeypatch.chdir(library / "docs" / "sub")
    entries = by_path(report(run, "2026-05-01"))  # above the current folder: absolute paths
    entry = entries[str(library / "docs" / "old-ed.md")]
    assert entry["edit_url"] == "https://git.example.org/library/edit/main/old-ed.md"
