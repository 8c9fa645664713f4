"""The daemon as a real process: scheduled cycles against a real SMTP server, SIGTERM, SIGKILL,
one daemon per store, catch-up after downtime, and the status command."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import StoreSettings
from scheduler.store import RunOutcome, StateStore, open_store

from .conftest import REPO, frontmatter, write_doc
from .smtp_server import PASSWORD, SmtpServer, running_server

Event = dict[str, Any]


class DaemonProcess:
    """``review-scheduler daemon`` in a subprocess, its JSON log lines read as they come."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "daemon", "--log-format", "json", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[Event | None] = queue.Queue()
        self.seen: list[Event] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                self.lines.put({"level": "raw", "message": line.rstrip()})
        self.lines.put(None)

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 90) -> Event:
        """The next log event matching ``predicate`` (events are read as the daemon logs)."""
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while True:
            remaining = (deadline - datetime.now(UTC)).total_seconds()
            try:
                event = self.lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"no matching log line within {timeout} s; saw "
                    f"{[e['message'] for e in self.seen]}"
                ) from None
            if event is None:
                raise AssertionError(
                    f"the daemon exited ({self.proc.wait()}) first; saw "
                    f"{[e['message'] for e in self.seen]}"
                )
            self.seen.append(event)
            if predicate(event):
                return event

    def message(self, text: str, timeout: float = 90) -> Event:
        return self.wait_for(lambda e: text in e["message"], timeout)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 90) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout)

    def rest(self) -> list[str]:
        """Every remaining log message, after the process has exited."""
        messages = []
        while (event := self.lines.get(timeout=30)) is not None:
            self.seen.append(event)
            messages.append(event["message"])
        return messages

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(cwd: Path, env: dict[str, str], *args: str) -> DaemonProcess:
        daemon = DaemonProcess(cwd, env, *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def far_schedule() -> str:
    """Daily, half a day from now: whatever the time of day, no slot is due while a test runs."""
    return f"0 {(datetime.now(UTC).hour + 12) % 24} * * *"


def library(
    root: Path,
    server: SmtpServer | None,
    schedule: str,
    editors: int = 2,
    drain: float = 300,
    grace: float = 20,
    deadline: float = 10,
) -> dict[str, str]:
    """Documents overdue for ``editors`` editors, a config, and the daemon's environment."""
    for i in range(editors):
        write_doc(
            root / "docs" / f"page-{i}.md",
            frontmatter(
                title=f"Page {i}", lastReviewed="2025-01-10", owner=f"editor{i}@example.org"
            ),
        )
    smtp = ""
    if server is not None:
        smtp = (
            f'[smtp]\nhost = "{server.host}"\nport = {server.port}\n'
            f'username = "scheduler"\nca_file = "{server.ca_file}"\n'
            f"message_deadline_seconds = {deadline}\n"
        )
    write_doc(
        root / "config" / "scheduler.toml",
        f"""\
[content]
root = "docs"
[mail]
from_address = "reviews@example.org"
[delivery]
retry_initial_seconds = 0
lease_seconds = {max(600, 2 * deadline)}
[daemon]
schedule = "{schedule}"
drain_interval_seconds = {drain}
shutdown_grace_seconds = {grace}
{smtp}""",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env |= {"HOME": str(root), "SCHEDULER_SMTP__PASSWORD": PASSWORD, "PYTHONPATH": str(REPO)}
    return env


def state_store(root: Path) -> StateStore:
    """The store a daemon started in ``root`` uses (the default one)."""
    return open_store(StoreSettings(), root)


def recipients(server: SmtpServer) -> Counter[str]:
    return Counter(r for m in server.handler.received for r in m.recipients)


def runs(root: Path) -> list[tuple[str, str | None]]:
    db = sqlite3.connect(root / ".review-scheduler" / "state.sqlite3")
    try:
        return db.execute("SELECT as_of, outcome FROM runs ORDER BY id").fetchall()
    finally:
        db.close()


def test_scheduled_cycles_deliver_then_sigterm_exits_cleanly(tmp_path: Path, spawn: Any) -> None:
    with running_server(tmp_path) as server:
        env = library(tmp_path, server, "*/2 * * * * *")
        daemon = spawn(tmp_path, env)
        started = daemon.message("daemon started")
        assert "schedule '*/2 * * * * *' in UTC" in started["message"]
        ended = daemon.message("cycle ended")
        assert "2 digests queued, 2 delivered, 0 waiting for a retry, 0 failed" in ended["message"]
        assert recipients(server) == Counter({"editor0@example.org": 1, "editor1@example.org": 1})
        message = server.handler.received[0].message
        assert message["Subject"] == "Review reminder: 1 overdue"
        # the next scheduled cycle, a couple of seconds later, sends nothing new
        again = daemon.message("cycle ended")
        assert "0 digests queued" in again["message"]
        # it found nothing to do, so a later one is answered without reading a document
        answered = daemon.message("nothing changed since the last cycle found nothing to do")
        assert "2 documents, none read again" in answered["message"]
        later = daemon.message("cycle ended")
        assert "0 digests queued, 0 delivered" in later["message"]
        assert daemon.stop(signal.SIGTERM) == 0
        tail = daemon.rest()
        assert tail[-1] == "daemon stopped"
        assert any("shutdown requested (SIGTERM)" in m for m in [e["message"] for e in daemon.seen])
        assert len(server.handler.received) == 2
    assert daemon.proc.stdout is not None and daemon.proc.stdout.read() == ""  # logs: stderr
    assert all(PASSWORD not in json.dumps(e) for e in daemon.seen)


def test_sigkill_mid_batch_loses_nothing(tmp_path: Path, spawn: Any) -> None:
    editors = 6
    with running_server(tmp_path) as server:
        env = library(tmp_path, server, "*/2 * * * * *", editors=editors)
        server.handler.faults.slow_data = [3.0] * 100  # each message stored, then a slow reply
        first = spawn(tmp_path, env)
        first.message("cycle begun")
        server.handler.wait_for(2)
        first.proc.kill()  # SIGKILL while the batch is being delivered
        first.proc.wait(10)
        delivered_before_restart = len(server.handler.received)
        assert delivered_before_restart < editors
        server.handler.faults.slow_data = []

        second = spawn(tmp_path, env)
        started = second.message("daemon started")
        assert "catching up" in started["message"]  # the killed cycle never finished
        server.handler.wait_for(editors)
        second.message("cycle ended")
        assert second.stop() == 0
    counts = recipients(server)
    assert set(counts) == {f"editor{i}@example.org" for i in range(editors)}  # none lost
    assert sum(counts.values()) - editors <= 1  # at most the message in flight, twice
    with state_store(tmp_path) as store:
        assert store.outbox.counts() == {
            "pending": 0,
            "sent": editors,
            "failed": 0,
            "unconfirmed": 0,
        }
    assert runs(tmp_path)[0][1] == "interrupted"


def test_sigterm_finishes_the_message_in_flight_and_leaves_the_rest(
    tmp_path: Path, spawn: Any
) -> None:
    with running_server(tmp_path) as server:
        env = library(tmp_path, server, "*/2 * * * * *", editors=5)
        server.handler.faults.slow_data = [4.0] * 100
        daemon = spawn(tmp_path, env)
        daemon.message("cycle begun")
        server.handler.wait_for(1)  # the first message is in flight (stored, reply pending)
        assert daemon.stop(signal.SIGTERM) == 0
        messages = daemon.rest()
        assert messages[-1] == "daemon stopped"
        assert any("1 delivered, 0 waiting for a retry" in m for m in messages), "\n".join(messages)
    with state_store(tmp_path) as store:
        assert store.outbox.counts() == {"pending": 4, "sent": 1, "failed": 0, "unconfirmed": 0}
        assert (
            store.outbox.lease_owners() == []
        )  # every unfinished message is free for the next run
    assert runs(tmp_path)[-1][1] == "ok"


def test_one_daemon_per_store(
    tmp_path: Path, spawn: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = library(tmp_path, None, far_schedule())
    first = spawn(tmp_path, env)
    first.message("daemon started")
    second = subprocess.run(
        [sys.executable, "-m", "scheduler", "daemon"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 2
    assert (
        f"another review-scheduler daemon (pid {first.proc.pid}) is already running on the "
        "state store .review-scheduler/state.sqlite3"
    ) in second.stderr
    monkeypatch.chdir(tmp_path)
    status = run("status")
    assert f"Daemon: running (pid {first.proc.pid})" in status.out

    first.proc.kill()  # the lock goes with the process
    first.proc.wait(10)
    third = spawn(tmp_path, env)
    third.message("daemon started")
    assert third.stop() == 0


def _record_cycle(root: Path, started: datetime) -> None:
    with state_store(root) as store:
        run_id = store.runs.start("cycle", started.date(), started)
        store.runs.finish(run_id, RunOutcome.OK, {"documents": 2}, started + timedelta(seconds=1))


def test_a_missed_cycle_runs_once_at_start_up(tmp_path: Path, spawn: Any) -> None:
    env = library(tmp_path, None, far_schedule())  # daily, never due during the test
    today = datetime.now(UTC).date()
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    _record_cycle(tmp_path, three_days_ago)  # then the daemon was down for three days
    daemon = spawn(tmp_path, env)
    started = daemon.message("daemon started")
    assert "catching up (the cycle due" in started["message"]
    begun = daemon.message("cycle begun")
    assert "(catch-up: the cycle due" in begun["message"]
    daemon.message("cycle ended")
    assert daemon.stop() == 0
    messages = daemon.rest()
    assert not any("cycle begun" in m for m in messages)
    history = runs(tmp_path)
    assert len(history) == 2  # the old one and exactly one catch-up, not one per missed day
    assert history[1][1] == "ok"
    assert history[1][0] in {today.isoformat(), datetime.now(UTC).date().isoformat()}
    assert len(list((tmp_path / ".review-scheduler" / "outbox").glob("*.eml"))) == 2


def test_no_catch_up_when_nothing_was_missed(tmp_path: Path, spawn: Any) -> None:
    now = datetime.now(UTC)
    # daily, half a day from now: whatever the time, no cycle was due in the last minute
    env = library(tmp_path, None, far_schedule())
    _record_cycle(tmp_path, now - timedelta(minutes=1))
    daemon = spawn(tmp_path, env)
    assert daemon.message("daemon started")["message"].endswith("no cycle was missed")
    assert daemon.stop() == 0
    assert not any("cycle begun" in m for m in daemon.rest())
    assert len(runs(tmp_path)) == 1


def test_status_health_check(tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    library(tmp_path, None, far_schedule())
    monkeypatch.chdir(tmp_path)
    fresh = run("status")
    assert fresh.code == 0
    assert not (tmp_path / ".review-scheduler").exists()  # looking creates no store
    assert fresh.out.startswith("Last cycle: none recorded\nNext cycle: ")
    assert fresh.out.endswith(
        "Outbox: 0 pending, 0 failed, 0 sent\nDaemon: not running\nHealth: healthy\n"
    )
    assert run("send", "--as-of", date.today().isoformat()).code == 0
    ok = run("status", "--format", "json")
    data = json.loads(ok.out)
    assert ok.code == 0 and data["healthy"] is True
    assert data["last_cycle"]["outcome"] == "ok"
    assert data["last_cycle"]["counts"]["delivered"] == 2
    assert data["daemon"] == {"running": False, "pid": None}
    # a cycle that died half-way is unhealthy until a new one completes
    with state_store(tmp_path) as store:
        store.runs.start("cycle", date.today(), datetime.now(UTC))
    broken = run("status")
    assert broken.code == 1
    assert ": interrupted: " in broken.out


def test_the_daemon_refreshes_the_dashboard_after_each_cycle(tmp_path: Path, spawn: Any) -> None:
    env = library(tmp_path, None, "*/2 * * * * *")
    env["SCHEDULER_DASHBOARD__OUT"] = "site"
    daemon = spawn(tmp_path, env)
    daemon.message("cycle ended")
    written = daemon.message("dashboard for")
    assert (
        "written to" in written["message"] and "2 documents, 2 calendar feeds" in written["message"]
    )
    assert daemon.stop() == 0
    html = (tmp_path / "site" / "index.html").read_text()
    assert '<strong id="count-documents">2</strong>' in html
    assert sorted(p.name for p in (tmp_path / "site" / "calendars").iterdir()) == [
        "editor0@example.org.ics",
        "editor1@example.org.ics",
    ]


# ----- faults: a lost store or lock, an unreadable content root, stalls at shutdown, logs


def run_outcomes(root: Path) -> list[tuple[str | None, dict[str, Any]]]:
    db = sqlite3.connect(root / ".review-scheduler" / "state.sqlite3")
    try:
        rows = db.execute("SELECT outcome, detail FROM runs ORDER BY id").fetchall()
    finally:
        db.close()
    return [(outcome, json.loads(detail) if detail else {}) for outcome, detail in rows]


@pytest.mark.parametrize(
    ("lost", "between_jobs"),
    [("store folder", False), ("lock file", True)],
)
def test_a_daemon_that_loses_its_store_or_lock_stops_with_exit_2(
    tmp_path: Path, spawn: Any, lost: str, between_jobs: bool
) -> None:
    # cycles every 2 s (checked before each), or none due: the watch between jobs notices
    env = library(tmp_path, None, far_schedule() if between_jobs else "*/2 * * * * *")
    first = spawn(tmp_path, env)
    first.message("daemon started" if between_jobs else "cycle ended")
    state = tmp_path / ".review-scheduler"
    if lost == "store folder":
        shutil.rmtree(state)
    else:
        (state / "state.sqlite3.lock").unlink()
    assert first.proc.wait(90) == 2  # at its next cycle or drain, whichever comes first
    messages = first.rest()
    assert any("was deleted or replaced while in use" in m for m in messages), messages
    assert messages[-1] == "daemon stopped: exit status 2"
    # nothing of the first daemon is left working: a second one starts and runs alone
    second = spawn(tmp_path, env)
    second.message("daemon started")
    if not between_jobs:
        second.message("cycle ended")
    assert second.stop() == 0


def test_a_missing_or_unlistable_content_root_is_a_failed_cycle(
    tmp_path: Path, spawn: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = library(tmp_path, None, "*/2 * * * * *")
    shutil.rmtree(tmp_path / "docs")
    (tmp_path / "docs").write_text("not a folder\n")  # listing it fails: not a directory
    daemon = spawn(tmp_path, env)
    failed = daemon.message("failed")
    assert "the content root docs cannot be read: Not a directory" in failed["message"] + (
        failed.get("error") or ""
    )
    assert daemon.stop() == 0
    outcomes = run_outcomes(tmp_path)
    assert outcomes and all(outcome == "failed" for outcome, _ in outcomes)
    assert "the content root docs cannot be read" in str(outcomes[-1][1]["error"])
    assert not list((tmp_path / ".review-scheduler" / "outbox").glob("*.eml"))  # nothing mailed
    monkeypatch.chdir(tmp_path)
    status = run("status")
    assert status.code == 1
    assert ": failed: ContentRootError: the content root docs cannot be read" in status.out
    (tmp_path / "docs").unlink()  # and a root that is gone altogether
    gone = spawn(tmp_path, env)
    assert "the content root docs does not exist" in str(
        gone.wait_for(lambda e: "does not exist" in e["message"] + e.get("error", ""))
    )
    assert gone.stop() == 0
    assert run_outcomes(tmp_path)[-1][0] == "failed"


def test_sigterm_is_honoured_within_the_grace_when_the_server_stalls(
    tmp_path: Path, spawn: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    grace = 3.0
    with running_server(tmp_path) as server:
        # the message deadline is far away: only the grace period can end the wait
        env = library(tmp_path, server, "*/2 * * * * *", editors=3, grace=grace, deadline=600)
        server.handler.faults.slow_data = [600.0] * 10  # stored, then no reply for 10 minutes
        daemon = spawn(tmp_path, env)
        daemon.message("cycle begun")
        server.handler.wait_for(1, timeout=90)  # the first message waits for its reply
        asked = datetime.now(UTC)
        daemon.proc.send_signal(signal.SIGTERM)
        # well before the server would answer (or the 600 s deadline end): the grace, the
        # cancelled job's few seconds and start-up noise on a loaded machine
        assert daemon.proc.wait(120) == 0
        took = (datetime.now(UTC) - asked).total_seconds()
        assert took < 120
        messages = daemon.rest()
        assert any(f"did not finish within {grace:.0f} s" in m for m in messages), messages
        assert messages[-1] == "daemon stopped", daemon.seen[-4:]
    outcome, detail = run_outcomes(tmp_path)[-1]
    assert outcome == "interrupted" and "stopped" in detail
    with state_store(tmp_path) as store:
        assert store.outbox.counts()["failed"] == 0  # still to send, not given up
        assert store.outbox.lease_owners() == []
    monkeypatch.chdir(tmp_path)
    status = run("status")
    assert status.code == 0, status.out  # an orderly stop is not a fault
    assert ": interrupted: " in status.out


def test_sigterm_during_a_long_check_is_handled_at_once(
    tmp_path: Path, spawn: Any, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = library(tmp_path, None, far_schedule())
    docs = tmp_path / "docs"
    body = frontmatter(title="Page", lastReviewed="2025-01-10", owner="editor@example.org")
    for i in range(8_000):  # a check of a second or more: a SIGTERM comes well within it
        folder = docs / f"part-{i // 1000}"
        if i % 1000 == 0:
            folder.mkdir()
        (folder / f"page-{i}.md").write_text(body)
    _record_cycle(tmp_path, datetime.now(UTC) - timedelta(days=3))  # a catch-up runs at once
    daemon = spawn(tmp_path, env)
    daemon.message("cycle begun")
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.message("shutdown requested (SIGTERM)")
    assert daemon.proc.wait(90) == 0
    messages = daemon.rest()
    # the signal was handled while the check ran: the cycle stopped before queuing anything
    assert any(m.startswith("cycle stopped: ") for m in messages), messages
    assert not any("cycle ended" in m for m in messages)
    outcome, detail = run_outcomes(tmp_path)[-1]
    assert outcome == "interrupted" and "stopped" in detail
    assert not (tmp_path / ".review-scheduler" / "outbox").exists()
    monkeypatch.chdir(tmp_path)
    assert run("status").code == 0
    # the next start catches up on the stopped cycle
    again = spawn(tmp_path, env)
    assert "was interrupted" in again.message("daemon started")["message"]
    again.message("cycle begun")
    assert again.stop() == 0


def test_json_logs_every_line_apscheduler_and_tracebacks_included(
    tmp_path: Path, spawn: Any
) -> None:
    env = library(tmp_path, None, "*/2 * * * * *")
    env["SCHEDULER_DASHBOARD__OUT"] = "site"
    (tmp_path / "site").write_text("a file where the dashboard folder should be\n")
    verbose = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "-v", "daemon", "--log-format", "json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert verbose.stderr is not None
    for line in verbose.stderr:
        lines.append(line)
        if "writing the dashboard to" in line:
            break
    verbose.send_signal(signal.SIGTERM)
    out, err = verbose.communicate(timeout=90)
    lines += err.splitlines(keepends=True)
    assert verbose.returncode == 0
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    loggers = {e["logger"] for e in events}
    assert any(name.startswith("apscheduler") for name in loggers), loggers
    failure = next(e for e in events if "writing the dashboard to" in e["message"])
    assert failure["level"] == "error"
    assert failure["error"].startswith("Traceback (most recent call last):")
    assert all(set(e) >= {"time", "level", "logger", "message"} for e in events)
    assert out == ""


def test_json_logs_errors_that_end_the_daemon(tmp_path: Path, spawn: Any) -> None:
    env = library(tmp_path, None, far_schedule())
    first = spawn(tmp_path, env)
    first.message("daemon started")
    second = subprocess.run(
        [sys.executable, "-m", "scheduler", "daemon", "--log-format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert second.returncode == 2
    events = [json.loads(line) for line in second.stderr.splitlines()]
    assert events[-1]["level"] == "error"
    assert "is already running on the state store" in events[-1]["message"]
    assert first.stop() == 0


def test_plain_daemon_lines_carry_a_timestamp(tmp_path: Path) -> None:
    env = library(tmp_path, None, far_schedule())
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "daemon"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=90)[1]
    assert proc.returncode == 0
    for line in [first, *rest.splitlines()]:
        assert re.match(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (INFO|WARNING|ERROR) ", line
        ), line
    assert "INFO scheduler.runtime.daemon: daemon started" in first
