"""Delivery under faults an operator must hear about: a relay that stores a message and answers
too late, settings that make delivery impossible, and replies that echo the password. Real
aiosmtpd servers on loopback, real SQLite stores, the real command line."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trustme

from scheduler.config import DeliverySettings
from scheduler.notify.email import redactor, sanitise_reply
from scheduler.notify.outbox import Outbox

from .conftest import frontmatter, write_doc
from .smtp_server import PASSWORD, USERNAME, SmtpServer, running_server
from .test_daemon import DaemonProcess
from .test_daemon import library as daemon_library
from .test_delivery import deliver, delivered_to, now, queue, smtp_channel, statuses

CONFIG = """\
[content]
root = "docs"
[routing]
default = ["team@example.org"]
[mail]
from_address = "reviews@example.org"
"""


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One overdue document for one editor: one digest per cycle."""
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    write_doc(
        tmp_path / "docs" / "late.md",
        frontmatter(title="Late page", lastReviewed="2026-01-15", owner="ed@example.org"),
    )
    monkeypatch.chdir(tmp_path)
    for name in ("HOST", "PORT", "CA_FILE", "USERNAME", "PASSWORD", "SECURITY"):
        monkeypatch.delenv(f"SCHEDULER_SMTP__{name}", raising=False)
    monkeypatch.setenv("SCHEDULER_DELIVERY__RETRY_INITIAL_SECONDS", "0")
    return tmp_path


def smtp_env(monkeypatch: pytest.MonkeyPatch, server: SmtpServer, **overrides: str) -> None:
    values = {
        "HOST": server.host,
        "PORT": str(server.port),
        "CA_FILE": str(server.ca_file),
        "USERNAME": USERNAME,
        "PASSWORD": PASSWORD,
    } | overrides
    for name, value in values.items():
        if value:
            monkeypatch.setenv(f"SCHEDULER_SMTP__{name}", value)
        else:
            monkeypatch.delenv(f"SCHEDULER_SMTP__{name}", raising=False)


# ----- a relay that stores the message and answers too late


def test_a_late_answer_after_the_data_is_sent_once_more_at_most_then_held(
    server: SmtpServer, outbox: Outbox
) -> None:
    warm, slow = queue(outbox, "a@example.org", "b@example.org")
    # The first message opens the connection; the server stores every copy of the second
    # and answers long after the deadline. Seconds of headroom for a loaded machine.
    server.handler.faults.slow_data = [0.0, 8.0, 8.0]
    runs = []
    for _ in range(5):  # five runs used to send five copies
        channel = smtp_channel(server, message_deadline_seconds=4)
        runs.append(deliver(outbox, channel, deadline=4))
    assert [(r.delivered, r.retrying, r.unconfirmed) for r in runs[:2]] == [
        (1, 1, 0),
        (0, 0, 1),
    ]
    assert all((r.delivered, r.retrying, r.unconfirmed) == (0, 0, 0) for r in runs[2:])
    # two copies at most, never "failed" though it may have arrived
    assert delivered_to(server) == Counter(
        {("a@example.org", warm.message_id): 1, ("b@example.org", slow.message_id): 2}
    )
    assert statuses(outbox)[1] == ("unconfirmed", (("b@example.org", "unconfirmed"),))
    reply = outbox.rows()[1].recipients[0].reply or ""
    assert reply.startswith("unconfirmed after 2 attempts, perhaps delivered: timed out")
    assert outbox.counts()["unconfirmed"] == 1
    # only a person's decision sends it again
    assert outbox.requeue(None, now()) == [outbox.rows()[1].id]
    assert deliver(outbox, smtp_channel(server)).delivered == 1
    assert delivered_to(server)[("b@example.org", str(slow.message_id))] == 3
    assert outbox.counts() == {"pending": 0, "sent": 2, "failed": 0, "unconfirmed": 0}


def test_the_give_up_window_holds_an_unconfirmed_message_instead_of_failing_it(
    server: SmtpServer, outbox: Outbox
) -> None:
    queue(outbox, "a@example.org", "b@example.org")
    server.handler.faults.slow_data = [0.0, 8.0]
    settings = DeliverySettings(retry_initial_seconds=0, give_up_after_hours=1e-9)
    report = deliver(outbox, smtp_channel(server, message_deadline_seconds=4), settings, 4)
    assert (report.delivered, report.unconfirmed, report.failed) == (1, 1, 0)
    assert statuses(outbox)[1] == ("unconfirmed", (("b@example.org", "unconfirmed"),))


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with running_server(tmp_path) as smtp:
        yield smtp


@pytest.fixture
def outbox(tmp_path: Path) -> Any:
    from scheduler.config import StoreSettings
    from scheduler.store import open_store

    with open_store(StoreSettings(url=f"sqlite:///{tmp_path}/o.sqlite3"), tmp_path) as store:
        yield Outbox(store)


def test_unconfirmed_messages_in_outbox_status_and_outbox_retry(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(library) as server:
        smtp_env(monkeypatch, server)
        monkeypatch.setenv("SCHEDULER_SMTP__MESSAGE_DEADLINE_SECONDS", "4")
        monkeypatch.setenv("SCHEDULER_SMTP__TIMEOUT_SECONDS", "30")
        server.handler.faults.slow_data = [8.0, 8.0]
        first = run("send", "--as-of", "2026-05-01")
        assert first.code == 0  # one more attempt will be made
        assert "0 delivered, 1 waiting for a retry, 0 failed." in first.out
        # The next run's delivery makes the second (and last) attempt.
        third = run("send", "--as-of", "2026-05-01")
        assert third.code == 1
        assert "0 delivered, 0 waiting for a retry, 0 failed, 1 unconfirmed." in third.out
        assert "unconfirmed" in third.err and "outbox retry" in third.err
        assert len(server.handler.received) == 2
        assert run("send", "--as-of", "2026-05-01").code == 0  # held: not sent again
        assert len(server.handler.received) == 2

        listing = run("outbox")
        assert listing.code == 1
        assert "#1 unconfirmed " in listing.out
        assert "    ed@example.org: unconfirmed unconfirmed after 2 attempts" in listing.out
        assert listing.out.endswith(
            "0 pending, 0 failed, 0 sent, 1 unconfirmed (perhaps delivered; see 'outbox retry').\n"
        )
        only = json.loads(run("outbox", "--state", "unconfirmed", "--format", "json").out)
        assert only["counts"]["unconfirmed"] == 1
        assert [m["status"] for m in only["messages"]] == ["unconfirmed"]

        status = run("status")
        assert "Outbox: 0 pending, 0 failed, 0 sent, 1 unconfirmed\n" in status.out
        as_json = json.loads(run("status", "--format", "json").out)
        assert as_json["outbox"]["unconfirmed"] == 1
        assert "messages-unconfirmed" in {f["code"] for f in as_json["findings"]}

        retried = run("outbox", "retry", "1")
        assert (retried.code, retried.out) == (
            0,
            "Queued 1 again: 1 delivered, 0 waiting for a retry, 0 failed.\n",
        )
        assert len(server.handler.received) == 3
    assert run("outbox").out.endswith("0 pending, 0 failed, 1 sent.\n")


# ----- settings that make delivery impossible, found at start-up


@pytest.mark.parametrize("command", [("send",), ("outbox", "retry", "--all"), ("daemon",)])
def test_a_missing_ca_file_is_refused_at_start_up(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("SCHEDULER_SMTP__HOST", "127.0.0.1")
    monkeypatch.setenv("SCHEDULER_SMTP__CA_FILE", str(library / "no-such-ca.pem"))
    result = run(*command)
    assert result.code == 2
    assert "[smtp] ca_file: cannot load certificate authorities from" in result.err
    assert "no-such-ca.pem: No such file or directory" in result.err
    assert "Traceback" not in result.err
    assert not (library / ".review-scheduler" / "state.sqlite3").exists()  # nothing queued


def test_an_unreadable_ca_file_is_refused(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = write_doc(library / "ca.pem", "not a certificate\n")
    monkeypatch.setenv("SCHEDULER_SMTP__HOST", "127.0.0.1")
    monkeypatch.setenv("SCHEDULER_SMTP__CA_FILE", str(bad))
    result = run("send")
    assert result.code == 2
    assert f"[smtp] ca_file: cannot load certificate authorities from {bad}" in result.err


@pytest.mark.parametrize("command", [("send",), ("outbox", "retry", "--all"), ("daemon",)])
def test_a_username_without_a_password_is_refused(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("SCHEDULER_SMTP__HOST", "127.0.0.1")
    monkeypatch.setenv("SCHEDULER_SMTP__USERNAME", "scheduler")
    result = run(*command)
    assert result.code == 2
    assert "[smtp] username is 'scheduler' but no password is set" in result.err
    assert "SCHEDULER_SMTP__PASSWORD" in result.err


def test_a_lease_shorter_than_twice_the_message_deadline_is_refused(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_DELIVERY__LEASE_SECONDS", "200")
    monkeypatch.setenv("SCHEDULER_SMTP__MESSAGE_DEADLINE_SECONDS", "120")
    for command in (("send",), ("outbox", "retry", "--all"), ("daemon",)):
        result = run(*command)
        assert result.code == 2, command
        assert (
            "[delivery] lease_seconds (200) must be at least twice [smtp] "
            "message_deadline_seconds (120)" in result.err
        )
    monkeypatch.setenv("SCHEDULER_DELIVERY__LEASE_SECONDS", "240")
    assert run("send", "--as-of", "2026-05-01").code == 0  # exactly twice is enough


# ----- settings problems found at delivery: send fails, status names the cause


def _delivery_fails_and_status_names(run: Any, *expected: str) -> None:
    result = run("send", "--as-of", "2026-05-01")
    assert result.code == 1
    assert "0 delivered, 1 waiting for a retry, 0 failed." in result.out  # kept, not lost
    assert "nothing can be delivered via" in result.err
    status = run("status")
    assert status.code == 1
    line = next(
        x
        for x in status.out.splitlines()
        if x.startswith("  delivery-settings: nothing can be delivered since ")
    )
    for text in expected:
        assert text in line
    as_json = json.loads(run("status", "--format", "json").out)
    assert as_json["healthy"] is False
    assert as_json["delivery_cause"]["since"] is not None
    for text in expected:
        assert text in as_json["delivery_cause"]["cause"]


def test_an_untrusted_certificate_fails_send_and_status(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(library, ca=trustme.CA()) as server:
        smtp_env(monkeypatch, server, CA_FILE="")  # the server's CA is not trusted
        _delivery_fails_and_status_names(run, "is not trusted", "[smtp] ca_file")
        assert server.handler.received == []
        # trusted now: delivered, and status is healthy again
        monkeypatch.setenv("SCHEDULER_SMTP__CA_FILE", str(server.ca_file))
        assert run("outbox").out.endswith("1 pending, 0 failed, 0 sent.\n")
        fixed = run("send", "--as-of", "2026-05-01")
        assert fixed.code == 0 and "1 delivered" in fixed.out
    status = run("status")
    assert "delivery-settings" not in status.out
    assert json.loads(run("status", "--format", "json").out)["delivery_cause"] is None


def test_a_server_without_starttls_fails_send_and_status(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(library, tls="none", auth=False) as server:
        smtp_env(monkeypatch, server, USERNAME="", PASSWORD="")
        _delivery_fails_and_status_names(run, "does not offer STARTTLS")
        assert server.handler.received == []


def test_a_refused_login_fails_send_and_status(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(library) as server:
        smtp_env(monkeypatch, server)
        server.handler.faults.auth_reply = "535 5.7.8 Authentication credentials invalid"
        _delivery_fails_and_status_names(
            run, "refused the login of [smtp] username 'scheduler'", "535 5.7.8"
        )


def test_the_first_time_a_cause_was_seen_is_kept(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(library) as server:
        smtp_env(monkeypatch, server)
        server.handler.faults.auth_reply = "535 5.7.8 Authentication credentials invalid"
        run("send", "--as-of", "2026-05-01")
        since = json.loads(run("status", "--format", "json").out)["delivery_cause"]["since"]
        run("outbox", "retry", "--all")
        run("send", "--as-of", "2026-05-01")
        again = json.loads(run("status", "--format", "json").out)["delivery_cause"]["since"]
        assert again == since
    with sqlite3.connect(library / ".review-scheduler" / "state.sqlite3") as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM runs WHERE kind = 'delivery'")]
    assert kinds == ["delivery"]  # one record for the problem, not one per attempt


# ----- password redaction


ECHOES = [
    PASSWORD.upper(),
    PASSWORD.title(),
    "".join("\\" + c for c in PASSWORD),  # every character backslash-escaped
    PASSWORD.replace("-", "%2D"),  # percent-encoded
    PASSWORD.replace("-", "=2d"),  # quoted-printable
    PASSWORD.replace("-", "\\x2d"),
    PASSWORD.replace("-", "\\u002D"),
    PASSWORD.replace("-", "&#45;"),
]


@pytest.mark.parametrize("echo", ECHOES)
def test_the_password_is_redacted_in_any_case_or_escaping(echo: str) -> None:
    redact = redactor(USERNAME, PASSWORD)
    assert redact(f"535 5.7.8 bad: {echo} (try again)") == "535 5.7.8 bad: *** (try again)"


def test_encoded_passwords_are_still_redacted() -> None:
    import base64

    redact = redactor(USERNAME, PASSWORD)
    plain = base64.b64encode(f"\0{USERNAME}\0{PASSWORD}".encode()).decode()
    alone = base64.b64encode(PASSWORD.encode()).decode()
    assert redact(f"x {plain} y {alone} z") == "x *** y *** z"


def test_replies_are_sanitised_and_cut() -> None:
    redact = redactor(USERNAME, PASSWORD)
    text = sanitise_reply("550 5.1.1 no\r\nsuch\x1b[31m user " + "x" * 1000, redact)
    assert text.startswith("550 5.1.1 no such [31m user xxx")
    assert len(text) == 200 and text.endswith("\u2026")
    # a password at the end of a long reply is redacted before the reply is cut
    cut = sanitise_reply("y" * 190 + PASSWORD.upper(), redact)
    assert cut == "y" * 190 + "***"


@pytest.mark.parametrize("echo", [PASSWORD.upper(), PASSWORD.replace("-", "\\-")])
def test_an_echoed_password_reaches_neither_stderr_nor_outbox_nor_store(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch, echo: str
) -> None:
    with running_server(library) as server:
        smtp_env(monkeypatch, server)
        server.handler.faults.rcpt_replies = {"ed@example.org": [f"550 5.1.1 {echo} refused"]}
        result = run("-vv", "send", "--as-of", "2026-05-01")
        assert result.code == 1
        assert "5.1.1 *** refused" in result.err
        listing = run("outbox")
        assert "ed@example.org: failed 550 5.1.1 *** refused" in listing.out
        as_json = run("outbox", "--format", "json")
    folded = PASSWORD.casefold().replace("-", "")
    for text in (result.out, result.err, listing.out, as_json.out):
        assert folded not in text.casefold().replace("-", "").replace("\\", "")
    db = sqlite3.connect(library / ".review-scheduler" / "state.sqlite3")
    db.execute("PRAGMA wal_checkpoint(FULL)")
    db.close()
    for path in (library / ".review-scheduler").rglob("*"):
        if path.is_file():
            data = path.read_bytes().lower().replace(b"-", b"").replace(b"\\", b"")
            assert folded.encode() not in data, path


def test_logs_of_an_echoing_server_hold_no_password(
    server: SmtpServer, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    queue(outbox, "a@example.org")
    server.handler.faults.auth_reply = f"535 5.7.8 {PASSWORD.upper()} is wrong"
    caplog.set_level(logging.DEBUG)
    report = deliver(outbox, smtp_channel(server))
    assert report.cause is not None and "535 5.7.8 *** is wrong" in report.cause
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("scheduler"))
    assert "refused the login" in ours
    assert PASSWORD.casefold() not in ours.casefold()


# ----- the daemon, as a real process


def test_the_daemon_refuses_to_start_with_a_missing_ca_file(tmp_path: Path) -> None:
    env = daemon_library(tmp_path, None, "0 9 * * mon-fri")
    env |= {
        "SCHEDULER_SMTP__HOST": "127.0.0.1",
        "SCHEDULER_SMTP__CA_FILE": str(tmp_path / "gone.pem"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "scheduler", "daemon"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "[smtp] ca_file: cannot load certificate authorities from" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".review-scheduler" / "state.sqlite3").exists()


def test_a_daemon_whose_login_is_refused_makes_status_name_the_cause(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(tmp_path) as server:
        server.handler.faults.auth_reply = "535 5.7.8 Authentication credentials invalid"
        # a cycle every two seconds: the first one queues digests and tries to deliver them
        env = daemon_library(tmp_path, server, "*/2 * * * * *", drain=3600)
        daemon = DaemonProcess(tmp_path, env)
        try:
            daemon.message("nothing can be delivered via", timeout=60)
            monkeypatch.chdir(tmp_path)
            for name in ("HOST", "PORT", "CA_FILE", "USERNAME", "PASSWORD"):
                monkeypatch.delenv(f"SCHEDULER_SMTP__{name}", raising=False)
            status = run("status")
            assert daemon.stop() == 0
        finally:
            daemon.kill()
        assert server.handler.received == []
    assert status.code == 1
    assert "refused the login of [smtp] username 'scheduler': 535 5.7.8" in status.out
