"""The reminder commands end to end: send, preview, outbox, outbox retry."""

from __future__ import annotations

import json
import sqlite3
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest

from .conftest import frontmatter, write_doc
from .smtp_server import PASSWORD, SmtpServer, running_server

CONFIG = """\
[content]
root = "docs"
[routing]
default = ["team@example.org"]
[routing.aliases]
"#leads" = ["lead@example.org"]
[reminders]
escalate_to = ["#leads"]
[mail]
from_address = "reviews@example.org"
"""


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    write_doc(
        tmp_path / "docs" / "late.md",
        frontmatter(title="Late page", lastReviewed="2026-01-15", owner="ed@example.org"),
    )
    write_doc(
        tmp_path / "docs" / "soon.md",
        frontmatter(title="Soon page", lastReviewed="2026-02-20", owner="ed@example.org"),
    )
    write_doc(
        tmp_path / "docs" / "fine.md", frontmatter(title="Fine page", lastReviewed="2026-04-01")
    )
    write_doc(
        tmp_path / "docs" / "old.md", frontmatter(title="Very old page", lastReviewed="2025-10-01")
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def outbox_files(library: Path) -> list[Path]:
    return sorted((library / ".review-scheduler" / "outbox").glob("*.eml"))


def test_send_writes_to_the_outbox_folder_and_never_twice(library: Path, run: Any) -> None:
    result = run("send", "--as-of", "2026-05-01")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "Reminder cycle for 2026-05-01: 4 documents, 3 outstanding.\n"
        "Queued 3 digests.\n"
        "Delivered via the outbox folder .review-scheduler/outbox: 3 delivered, 0 waiting for a "
        "retry, 0 failed.\n"
    )
    files = outbox_files(library)
    messages = {
        message_from_bytes(f.read_bytes())["To"]: message_from_bytes(f.read_bytes()) for f in files
    }
    assert set(messages) == {"ed@example.org", "team@example.org", "lead@example.org"}
    assert messages["ed@example.org"]["Subject"] == "Review reminder: 1 overdue, 1 due soon"
    # old.md is 121 days overdue: the escalation contact gets an escalation digest of their
    # own, and the team's digest is copied to nobody
    assert messages["team@example.org"]["Cc"] is None
    assert messages["lead@example.org"]["Subject"] == ("Escalation: 1 overdue for 30 days or more")

    again = run("send", "--as-of", "2026-05-01")
    assert again.out.splitlines()[1] == "Queued 0 digests."
    assert outbox_files(library) == files


def test_dry_run_writes_nothing(library: Path, run: Any) -> None:
    result = run("send", "--as-of", "2026-05-01", "--dry-run")
    assert result.code == 0
    assert "To: ed@example.org\nSubject: Review reminder: 1 overdue, 1 due soon\n" in result.out
    assert "* [NEW] Late page" in result.out
    assert result.out.endswith(
        "Dry run for 2026-05-01: 4 documents, 3 outstanding; 3 digests would be queued.\n"
    )
    assert not (library / ".review-scheduler").exists()


def test_preview(library: Path, run: Any) -> None:
    text = run("preview", "--editor", "ed@example.org", "--as-of", "2026-05-01")
    assert text.code == 0
    assert text.out.startswith("Subject: Review reminder: 1 overdue, 1 due soon\n\nHello,\n")
    html = run("preview", "--editor", "ed@example.org", "--as-of", "2026-05-01", "--format", "html")
    assert html.out.startswith("<!DOCTYPE html>") and "Late page" in html.out
    nothing = run("preview", "--editor", "ed@example.org", "--as-of", "2026-03-01")
    assert (nothing.code, nothing.out, nothing.err) == (
        0,
        "",
        "Nothing outstanding for ed@example.org on 2026-03-01.\n",
    )
    assert not (library / ".review-scheduler").exists()  # previews write nothing


def test_cycles_over_several_days(library: Path, run: Any) -> None:
    def sent_on(day: str) -> int:
        before = len(outbox_files(library))
        assert run("send", "--as-of", day).code == 0
        return len(outbox_files(library)) - before

    assert sent_on("2026-05-01") == 3  # ed, the team, and an escalation digest for lead
    assert sent_on("2026-05-02") == 0
    assert sent_on("2026-05-08") == 3  # a week on: both overdue pages again
    write_doc(
        library / "docs" / "late.md",  # ed re-reviews late.md
        frontmatter(title="Late page", lastReviewed="2026-05-08", owner="ed@example.org"),
    )
    assert sent_on("2026-05-09") == 0
    # the team's page, escalated; ed's soon.md is not overdue until 05-20
    assert sent_on("2026-05-15") == 2
    assert sent_on("2026-05-21") == 1  # soon.md became overdue
    ed = [message_from_bytes(f.read_bytes()) for f in outbox_files(library)]
    last = [m for m in ed if m["To"] == "ed@example.org" and "05-21" in str(m.get_payload(0))]
    assert len(last) == 1
    part = last[0].get_payload(0)
    assert isinstance(part, Message)
    body = part.get_payload(decode=True)
    assert isinstance(body, bytes)
    body = body.decode()
    assert "Soon page" in body and "Late page" not in body


def _smtp_env(monkeypatch: pytest.MonkeyPatch, server: SmtpServer, password: str) -> None:
    monkeypatch.setenv("SCHEDULER_SMTP__HOST", server.host)
    monkeypatch.setenv("SCHEDULER_SMTP__PORT", str(server.port))
    monkeypatch.setenv("SCHEDULER_SMTP__CA_FILE", str(server.ca_file))
    monkeypatch.setenv("SCHEDULER_SMTP__USERNAME", "scheduler")
    monkeypatch.setenv("SCHEDULER_SMTP__PASSWORD", password)
    monkeypatch.setenv("SCHEDULER_DELIVERY__RETRY_INITIAL_SECONDS", "0")


def test_send_over_smtp(library: Path, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_server(library) as server:
        _smtp_env(monkeypatch, server, PASSWORD)
        result = run("send", "--as-of", "2026-05-01")
        assert result.code == 0
        assert f"Delivered via {server.host}:{server.port}: 3 delivered" in result.out
        received = {tuple(r.recipients): r.message for r in server.handler.received}
        assert set(received) == {("ed@example.org",), ("team@example.org",), ("lead@example.org",)}
    listing = run("outbox", "--state", "sent")
    assert listing.code == 0
    assert listing.out.endswith("0 pending, 0 failed, 3 sent.\n")
    assert "    lead@example.org: sent\n" in listing.out


def test_refused_recipient_is_reported_and_can_be_retried(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(library) as server:
        _smtp_env(monkeypatch, server, PASSWORD)
        server.handler.faults.rcpt_replies = {"ed@example.org": ["550 5.1.1 No such user"]}
        result = run("send", "--as-of", "2026-05-01")
        assert result.code == 1
        assert "2 delivered, 0 waiting for a retry, 1 failed." in result.out
        assert result.err == (
            "ERROR scheduler.notify.delivery: delivery failed for good: "
            "digest:ed@example.org:2026-05-01 to ed@example.org: "
            "5.1.1 No such user\n"
        )
        failed = run("outbox", "--state", "failed")
        assert failed.code == 1
        assert "    ed@example.org: failed 550 5.1.1 No such user\n" in failed.out
        as_json = run("outbox", "--state", "failed", "--format", "json")
        assert as_json.code == 1
        data = json.loads(as_json.out)
        assert data["counts"] == {"pending": 0, "sent": 2, "failed": 1, "unconfirmed": 0}
        [message] = data["messages"]
        assert (message["key"], message["status"]) == ("digest:ed@example.org:2026-05-01", "failed")
        assert message["recipients"] == [
            {
                "address": "ed@example.org",
                "status": "failed",
                "code": 550,
                "reply": "5.1.1 No such user",
            }
        ]
        assert run("outbox", "retry").code == 2  # say which
        retried = run("outbox", "retry", "--all")
        assert (retried.code, retried.out) == (
            0,
            "Queued 1 again: 1 delivered, 0 waiting for a retry, 0 failed.\n",
        )
        assert [r.recipients for r in server.handler.received].count(["ed@example.org"]) == 1
    assert run("outbox").out.endswith("0 pending, 0 failed, 3 sent.\n")


def test_the_password_appears_nowhere(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dummy = "dummy-Pa55word-7e3a"
    with running_server(library) as server:
        _smtp_env(monkeypatch, server, dummy)
        server.handler.faults.auth_reply = f"535 5.7.8 {dummy} is not the password"
        result = run("-vv", "send", "--as-of", "2026-05-01")
        assert result.code == 1  # nothing can be delivered: say so...
        # ...and keep all three for later; the login is not tried again for each message
        assert "0 delivered, 1 waiting for a retry" in result.out
        assert "535 5.7.8 *** is not the password" in result.err  # the log says why...
        listing = run("outbox")
    for text in (result.out, result.err, listing.out, listing.err):
        assert dummy not in text  # ...never with the secret
    db = sqlite3.connect(library / ".review-scheduler" / "state.sqlite3")
    db.execute("PRAGMA wal_checkpoint(FULL)")
    db.close()
    for path in (library / ".review-scheduler").rglob("*"):
        if path.is_file():
            assert dummy.encode() not in path.read_bytes(), path


def test_password_in_the_config_file_is_refused(library: Path, run: Any) -> None:
    write_doc(
        library / "config" / "scheduler.toml",
        CONFIG + '[smtp]\nhost = "mail.example.org"\npassword = "hunter2"\n',
    )
    result = run("send")
    assert result.code == 2
    assert (
        "password must not be written in a config file; set the environment variable "
        "SCHEDULER_SMTP__PASSWORD instead" in result.err
    )
    assert "hunter2" not in result.err


def test_plaintext_smtp_to_a_remote_host_is_refused(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_SMTP__HOST", "mail.example.org")
    monkeypatch.setenv("SCHEDULER_SMTP__SECURITY", "none")
    monkeypatch.setenv("SCHEDULER_SMTP__PASSWORD", "hunter2")
    result = run("send")
    assert result.code == 2
    assert "only allowed to a loopback host" in result.err
    assert "hunter2" not in result.err


def test_preview_of_an_alias_a_mistyped_address_and_an_escalation_contact(
    library: Path, run: Any
) -> None:
    alias = run("preview", "--editor", "#leads", "--as-of", "2026-05-01")
    assert alias.code == 0
    assert alias.err == (
        "#leads stands for lead@example.org.\nEscalation digest for lead@example.org:\n"
    )
    assert alias.out.startswith("Subject: Escalation: 1 overdue for 30 days or more\n")
    assert "EDITOR: TEAM@EXAMPLE.ORG (1)\n\n* [NEW] Very old page\n" in alias.out

    typo = run("preview", "--editor", "ed@exmaple.org", "--as-of", "2026-05-01")
    assert (typo.code, typo.out) == (2, "")
    assert typo.err == (
        "review-scheduler: error: no document routes to ed@exmaple.org and it is not an "
        "escalation contact; did you mean ed@example.org?\n"
    )


def test_one_config_used_from_two_folders_shares_one_store_and_sends_once(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store lives beside the config file: a cycle run from another folder (the config
    found upward, or named absolutely or relatively) finds the digests already sent."""
    project = tmp_path / "project"
    config = write_doc(project / "review-scheduler.toml", CONFIG)
    write_doc(
        project / "docs" / "late.md",
        frontmatter(title="Late page", lastReviewed="2026-01-15", owner="ed@example.org"),
    )
    write_doc(project / "docs" / "old.md", frontmatter(title="Old page", lastReviewed="2025-10-01"))
    (tmp_path / "elsewhere").mkdir()
    with running_server(tmp_path) as server:
        _smtp_env(monkeypatch, server, PASSWORD)
        monkeypatch.chdir(project / "docs")
        first = run("send", "--as-of", "2026-05-01")
        assert (first.code, first.err) == (0, "")
        assert first.out.splitlines()[:2] == [
            "Reminder cycle for 2026-05-01: 2 documents, 2 outstanding.",
            "Queued 3 digests.",
        ]
        assert len(server.handler.wait_for(3)) == 3
        for folder, named in (
            (tmp_path / "elsewhere", str(config)),
            (tmp_path, "project/review-scheduler.toml"),
        ):
            monkeypatch.chdir(folder)
            again = run("send", "--config", named, "--as-of", "2026-05-01")
            assert (again.code, again.err) == (0, "")
            assert again.out.splitlines()[:2] == [
                "Reminder cycle for 2026-05-01: 2 documents, 2 outstanding.",
                "Queued 0 digests (3 already queued earlier this cycle).",
            ], again.out
        assert sorted(tuple(r.recipients) for r in server.handler.received) == [
            ("ed@example.org",),
            ("lead@example.org",),
            ("team@example.org",),
        ]
    assert (project / ".review-scheduler" / "state.sqlite3").is_file()
    assert not (project / "docs" / ".review-scheduler").exists()
    assert not (tmp_path / "elsewhere" / ".review-scheduler").exists()
    assert not (tmp_path / ".review-scheduler").exists()


def test_an_editor_with_thousands_of_outstanding_pages_gets_one_readable_digest(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large library used to make the digest of its default editor outgrow the template
    size limit: the cycle then queued no digest for anyone, every day."""
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    for n in range(3000):
        write_doc(
            tmp_path / "docs" / f"section-{n % 30:02}" / f"page-{n:04}.md",
            frontmatter(title=f"Page {n} " + "about a long topic " * 5, lastReviewed="2025-06-01"),
        )
    monkeypatch.chdir(tmp_path)
    result = run("send", "--as-of", "2026-05-01")
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines()[:2] == [
        "Reminder cycle for 2026-05-01: 3000 documents, 3000 outstanding.",
        "Queued 2 digests.",  # the team's, and the escalation contact's
    ]
    for path in outbox_files(tmp_path):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        text = message.get_body(("plain",))
        assert text is not None
        content = text.get_content()
        assert "3000 overdue" in message["Subject"] or "3000 overdue" in content
        assert "most urgent of these 3000 documents" in content
        assert len(path.read_bytes()) < 400_000


def test_the_number_of_documents_a_digest_lists_is_a_setting(library: Path, run: Any) -> None:
    config = library / "config" / "scheduler.toml"
    config.write_text(
        CONFIG.replace("[reminders]\n", "[reminders]\nmax_documents_per_digest = 1\n")
    )
    result = run("send", "--as-of", "2026-05-01")
    assert result.code == 0, result.err
    messages = [
        message_from_bytes(f.read_bytes(), policy=policy.default) for f in outbox_files(library)
    ]
    (ed,) = [m for m in messages if m["To"] == "ed@example.org"]
    assert isinstance(ed, EmailMessage)
    text = ed.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "1 most urgent of these 2 documents" in body
    assert "Late page" in body and "Soon page" not in body
