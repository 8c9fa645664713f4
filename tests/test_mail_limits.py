"""Who may be mailed and what a message may say: [mail] allowed_domains, [routing] max_owners,
one-line titles in every part of a digest, and user templates that fail, loop or grow without
end. The real command line, real files, a real SMTP server on loopback where mail is sent."""

from __future__ import annotations

import json
import threading
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import TemplateError
from scheduler.notify.digest import DigestRenderer, digest_context
from scheduler.notify.reminders import Digest, DigestItem
from scheduler.review.state import State

from .conftest import frontmatter, write_doc
from .smtp_server import PASSWORD, running_server
from .test_digest import report

CONFIG = """\
[content]
root = "docs"
[routing]
default = ["team@example.org"]
[mail]
from_address = "reviews@example.org"
"""


def owners_doc(path: Path, owners: list[str], title: str = "Many owners") -> None:
    listed = "\n".join(f"  - {o}" for o in owners)
    text = frontmatter(title=title, lastReviewed="2026-01-15", owner=None)
    write_doc(path, text.replace("---\n", f"---\nowner:\n{listed}\n", 1))


def eml_recipients(library: Path) -> list[str]:
    found = []
    for path in sorted((library / ".review-scheduler" / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        found.append(str(message["To"]))
    return sorted(found)


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ----- [mail] allowed_domains and [routing] max_owners


def test_500_outside_owners_are_never_mailed(library: Path, run: Any) -> None:
    write_doc(library / "config" / "scheduler.toml", CONFIG + 'allowed_domains = ["example.org"]\n')
    owners_doc(library / "docs" / "many.md", [f"user{i}@evil.example" for i in range(500)])
    validated = run("validate", "docs")
    assert validated.code == 0  # warnings only
    assert "warning: owner: names 500 owners; only the first 10 are used" in validated.out
    assert (
        "user0@evil.example, user1@evil.example, user2@evil.example and 7 more: outside "
        "[mail] allowed_domains, so never mailed; its reminders go to [routing] default"
    ) in validated.out
    checked = json.loads(run("check", "--as-of", "2026-05-01", "--format", "json").out)
    messages = {p["message"] for d in checked["documents"] for p in d.get("problems", [])}
    assert "names 500 owners; only the first 10 are used" in messages
    assert any("outside [mail] allowed_domains" in m for m in messages)
    as_json = json.loads(run("validate", "docs", "--format", "json").out)
    assert {"RS303", "RS304"} <= {p["code"] for f in as_json["files"] for p in f["problems"]}
    sent = run("send", "--as-of", "2026-05-01")
    assert sent.code == 0, sent.err
    assert eml_recipients(library) == ["team@example.org"]  # the default editors, only


def test_allowed_owners_are_kept_and_the_default_hears_of_the_rest(library: Path, run: Any) -> None:
    write_doc(
        library / "config" / "scheduler.toml",
        CONFIG + 'allowed_domains = ["Example.org", "partner.example"]\n',
    )
    owners_doc(
        library / "docs" / "mixed.md",
        ["ed@EXAMPLE.org", "pat@partner.example", "x@evil.example", "y@sub.example.org"],
    )
    owners_doc(library / "docs" / "fine.md", ["ed@example.org"], title="Fine")
    result = run("validate", "docs")
    assert "x@evil.example, y@sub.example.org: outside [mail] allowed_domains" in result.out
    assert "fine.md" not in result.out.split("files checked")[0].replace("docs/fine.md:1:", "")
    assert run("send", "--as-of", "2026-05-01").code == 0
    assert eml_recipients(library) == [
        "ed@example.org",  # one digest for both documents
        "pat@partner.example",
        "team@example.org",
    ]


def test_max_owners_caps_who_is_mailed_without_allowed_domains(library: Path, run: Any) -> None:
    owners_doc(library / "docs" / "many.md", [f"user{i:03}@example.org" for i in range(500)])
    assert run("send", "--as-of", "2026-05-01").code == 0
    assert eml_recipients(library) == [f"user{i:03}@example.org" for i in range(10)]
    write_doc(
        library / "config" / "scheduler.toml",
        CONFIG.replace("[mail]", "max_owners = 3\n[mail]"),
    )
    result = run("validate", "docs")
    assert "names 500 owners; only the first 3 are used" in result.out
    assert "raise [routing] max_owners" in result.out


def test_allowed_domains_must_be_domain_names(library: Path, run: Any) -> None:
    write_doc(
        library / "config" / "scheduler.toml", CONFIG + 'allowed_domains = ["exa mple.org"]\n'
    )
    result = run("validate", "docs")
    assert result.code == 2
    assert "allowed_domains" in result.err and "is not a domain name" in result.err


# ----- one-line fields in every part of a digest


def _parts(path: Path) -> tuple[str, str, str]:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(message["Subject"]), text.get_content(), html.get_content()


def test_titles_with_line_breaks_cannot_forge_lines_in_any_part(library: Path, run: Any) -> None:
    write_doc(
        library / "templates" / "subject.txt",
        "Review: {{ digest.groups[0].documents[0].title }}\n",
    )
    write_doc(
        library / "config" / "scheduler.toml",
        CONFIG + 'templates = "templates"\n',
    )
    forged = '"Late\\r\\nFile: forged.md\\u2028Page: https://evil.example\\u0085\\tend"'
    write_doc(
        library / "docs" / "late.md",
        frontmatter(title=forged, lastReviewed="2026-01-15", owner="ed@example.org"),
    )
    validated = run("validate", "docs")
    assert "docs/late.md:2: warning: title: holds line breaks or control characters" in (
        validated.out
    )
    checked = run("check", "--as-of", "2026-05-01")
    assert "title: holds line breaks or control characters" in checked.out
    assert run("send", "--as-of", "2026-05-01").code == 0
    [path] = (library / ".review-scheduler" / "outbox").glob("*.eml")
    subject, text, html = _parts(path)
    one = "Late File: forged.md Page: https://evil.example end"
    assert subject == f"Review: {one}"
    assert f"* [NEW] {one}" in text.splitlines()
    assert not [line for line in text.splitlines() if line.startswith(("File: forged", "Page:"))]
    assert one in html


def test_multi_line_title_rule_can_be_switched_off(library: Path, run: Any) -> None:
    write_doc(
        library / "config" / "scheduler.toml",
        CONFIG + '[metadata]\nignore = ["multi-line-title"]\n',
    )
    write_doc(library / "docs" / "a.md", frontmatter(title='"Two\\nlines"'))
    assert "RS208" not in run("validate", "docs", "--format", "json").out


def _escalated(escalate_to: tuple[str, ...]) -> tuple[str, str]:
    digest = Digest(
        "ed@example.org",
        date(2026, 5, 1),
        (DigestItem(report("a.md", "Old page", State.OVERDUE, -60), False, True),),
    )
    rendered = DigestRenderer().render(
        digest_context(
            digest, escalate_after_days=30, last_reviewed_key="k", escalate_to=escalate_to
        )
    )
    return rendered.text, rendered.html


@pytest.mark.parametrize("contacts", [(), ("ed@example.org",)], ids=["none", "only-self"])
def test_escalated_digest_without_other_contacts_names_nobody(contacts: tuple[str, ...]) -> None:
    text, html = _escalated(contacts)
    for part in (text, html):
        assert "overdue for 30 days or more." in part
        assert "reported" not in part and " to ." not in part and "also sent" not in part
    text, html = _escalated(("boss@example.org",))
    assert "and so reported\nto boss@example.org." in text
    assert "and so reported to boss@example.org." in html


# ----- user templates that fail, loop or grow


def _user_templates(library: Path, subject: str) -> None:
    write_doc(library / "templates" / "subject.txt", subject)
    write_doc(library / "config" / "scheduler.toml", CONFIG + 'templates = "templates"\n')


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Reminder\n{{ digest.nope }}\n", r"subject.txt, line 2: .*has no attribute 'nope'"),
        ("Reminder\n\n{% if %}\n", r"subject.txt, line 3: Expected an expression"),
        ("Reminder {{ 1 // 0 }}\n", r"subject.txt, line 1: .*division"),
    ],
    ids=["undefined", "syntax", "runtime"],
)
def test_template_errors_name_the_file_and_line(
    tmp_path: Path, template: str, message: str
) -> None:
    (tmp_path / "subject.txt").write_text(template)
    digest = Digest(
        "ed@example.org",
        date(2026, 5, 1),
        (DigestItem(report("a.md", "A", State.OVERDUE, -1), False, False),),
    )
    with pytest.raises(TemplateError, match=message) as caught:
        DigestRenderer(tmp_path).render(
            digest_context(digest, escalate_after_days=30, last_reviewed_key="k")
        )
    assert str(tmp_path / "subject.txt") in str(caught.value)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "took longer than 1 s",
        ),
        ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "grew over 1000000 char"),
        ("{{ 'x' * 10 ** 9 }}", "too large"),
    ],
    ids=["silent-loop", "output", "one-huge-string"],
)
def test_runaway_templates_are_stopped(tmp_path: Path, template: str, message: str) -> None:
    (tmp_path / "subject.txt").write_text(template)
    digest = Digest(
        "ed@example.org",
        date(2026, 5, 1),
        (DigestItem(report("a.md", "A", State.OVERDUE, -1), False, False),),
    )
    renderer = DigestRenderer(tmp_path, seconds=1, max_chars=1_000_000)
    with pytest.raises(TemplateError, match=message):
        renderer.render(digest_context(digest, escalate_after_days=30, last_reviewed_key="k"))


def test_a_runaway_template_is_stopped_in_a_worker_thread_too(tmp_path: Path) -> None:
    (tmp_path / "subject.txt").write_text(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    )
    digest = Digest(
        "ed@example.org",
        date(2026, 5, 1),
        (DigestItem(report("a.md", "A", State.OVERDUE, -1), False, False),),
    )
    context = digest_context(digest, escalate_after_days=30, last_reviewed_key="k")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            DigestRenderer(tmp_path, seconds=1).render(context)
        except TemplateError as exc:
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(60)  # generous: the deadline is one second of the worker's time
    assert not worker.is_alive()
    assert len(errors) == 1 and "took longer than 1 s" in str(errors[0])


def test_a_template_error_does_not_stop_send_delivering_what_waits(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_doc(
        library / "docs" / "late.md",
        frontmatter(title="Late", lastReviewed="2026-01-15", owner="ed@example.org"),
    )
    with running_server(library) as server:
        for name, value in {
            "HOST": server.host,
            "PORT": str(server.port),
            "CA_FILE": str(server.ca_file),
            "USERNAME": "scheduler",
            "PASSWORD": PASSWORD,
        }.items():
            monkeypatch.setenv(f"SCHEDULER_SMTP__{name}", value)
        monkeypatch.setenv("SCHEDULER_DELIVERY__RETRY_INITIAL_SECONDS", "0")
        server.handler.faults.data_replies = ["451 4.3.0 try later"]
        first = run("send", "--as-of", "2026-05-01")
        assert "0 delivered, 1 waiting for a retry" in first.out  # one digest waits
        _user_templates(library, "Reminder\n{{ digest.nope }}\n")
        write_doc(  # a digest for someone else is due next
            library / "docs" / "other.md",
            frontmatter(title="Other", lastReviewed="2026-01-15", owner="pat@example.org"),
        )
        second = run("send", "--as-of", "2026-05-02")
        assert second.code == 2
        assert "Queued 0 digests." in second.out
        assert "1 delivered, 0 waiting for a retry, 0 failed." in second.out
        assert "subject.txt, line 2" in second.err and "'nope'" in second.err
        assert [r.recipients for r in server.handler.received] == [["ed@example.org"]]
    status = json.loads(run("status", "--format", "json").out)
    assert status["last_cycle"]["outcome"] == "failed"
    assert "subject.txt, line 2" in status["last_cycle"]["counts"]["error"]


def test_a_looping_template_does_not_hold_the_cycle_for_ever(library: Path, run: Any) -> None:
    write_doc(
        library / "docs" / "late.md",
        frontmatter(title="Late", lastReviewed="2026-01-15", owner="ed@example.org"),
    )
    _user_templates(
        library,
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    )
    result = run("send", "--as-of", "2026-05-01")  # stopped, not 10^10 iterations later
    assert result.code == 2
    assert "took longer than 10 s; is there a runaway loop?" in result.err
    assert "subject.txt, line 1" in result.err
