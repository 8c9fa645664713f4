"""``status`` as a health check: each reason it is unhealthy, on real SQLite files, real SMTP
servers and real processes; the rules themselves as pure functions with time passed in."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.config import Settings, StoreSettings, load_settings
from scheduler.runtime.health import (
    Finding,
    HealthPolicy,
    Status,
    judge,
    missed_slots,
)
from scheduler.runtime.schedule import LocalCronTrigger
from scheduler.store import Failing, Run, RunOutcome, StateStore, open_store
from scheduler.usecases import reminders

from .conftest import REPO, frontmatter, write_doc
from .smtp_server import PASSWORD, SmtpServer, running_server

STORE = Path(".review-scheduler") / "state.sqlite3"


def setup(
    root: Path, server: SmtpServer | None = None, schedule: str = "0 9 * * *", extra: str = ""
) -> dict[str, str]:
    """Two overdue documents for two editors, a config, and an environment for subprocesses."""
    for i in range(2):
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
            "timeout_seconds = 60\nmessage_deadline_seconds = 120\n"
        )
    write_doc(
        root / "config" / "scheduler.toml",
        f'[content]\nroot = "docs"\n[mail]\nfrom_address = "reviews@example.org"\n'
        f'[delivery]\nretry_initial_seconds = 600\n[daemon]\nschedule = "{schedule}"\n'
        f"{extra}\n{smtp}",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    return env | {"HOME": str(root), "SCHEDULER_SMTP__PASSWORD": PASSWORD, "PYTHONPATH": str(REPO)}


def settings_in(root: Path) -> Settings:
    return load_settings(root / "config" / "scheduler.toml")


def store_in(root: Path) -> StateStore:
    return open_store(StoreSettings(), root)


def record_cycle(root: Path, started: datetime, outcome: RunOutcome | None = RunOutcome.OK) -> None:
    with store_in(root) as store:
        run_id = store.runs.start("cycle", started.date(), started)
        if outcome is not None:
            store.runs.finish(run_id, outcome, {"documents": 2}, started + timedelta(seconds=1))


def cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``review-scheduler ARGS`` as a real process in ``root``."""
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --------------------------------------------------------------------------- the rules, pure

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)  # a Monday
POLICY = HealthPolicy(timedelta(minutes=15), missed_cycles=2)


def status_of(**figures: Any) -> Status:
    base: dict[str, Any] = {
        "last": None,
        "outcome": None,
        "next_cycle": None,
        "schedule": "0 9 * * *",
        "timezone": "Europe/Madrid",
        "outbox": {"pending": 0, "sent": 0, "failed": 0},
    }
    return Status(**(base | figures))


def codes(findings: tuple[Finding, ...]) -> list[str]:
    return [f.code for f in findings]


def test_missed_slots_count_scheduled_times_after_the_last_cycle_began() -> None:
    every_ten_seconds = LocalCronTrigger("*/10 * * * * *", ZoneInfo("Europe/Madrid"))
    started = T0 + timedelta(seconds=1)
    assert missed_slots(every_ten_seconds, started, started + timedelta(seconds=8), 5) == ()
    assert missed_slots(every_ten_seconds, started, T0 + timedelta(seconds=10), 5) == (
        T0 + timedelta(seconds=10),
    )
    late = missed_slots(every_ten_seconds, started, T0 + timedelta(hours=9), 3)
    assert late == tuple(T0 + timedelta(seconds=s) for s in (10, 20, 30))  # stops at the limit
    assert missed_slots(every_ten_seconds, None, T0 + timedelta(days=9), 3) == ()
    weekdays = LocalCronTrigger("0 9 * * mon-fri", ZoneInfo("UTC"))
    friday = T0 + timedelta(days=4)
    # Friday's cycle, then the weekend: nothing missed before Monday 09:00
    assert missed_slots(weekdays, friday, friday + timedelta(days=2, hours=23), 2) == ()
    assert len(missed_slots(weekdays, friday, friday + timedelta(days=4), 2)) == 2


def test_delivery_failing_is_judged_against_the_threshold() -> None:
    failing = Failing(T0, 2, 451, "4.3.0 try later")  # a reply without its code
    status = status_of(failing=failing)
    assert judge(status, POLICY, T0 + timedelta(minutes=15)) == ()
    (finding,) = judge(status, POLICY, T0 + timedelta(minutes=15, seconds=1))
    assert finding.code == "delivery-failing"
    assert finding.reason == (
        "delivery has been failing since 2026-05-04 11:00:00+02:00 (2 message(s) waiting for "
        "a retry); last reply: 451 4.3.0 try later"
    )


def test_each_rule_names_its_reason() -> None:
    last = Run(1, "cycle", date(2026, 5, 4), T0, None, RunOutcome.FAILED, {"error": "OSError: x"})
    status = status_of(
        last=last,
        outcome="failed",
        missed=(T0 + timedelta(days=1), T0 + timedelta(days=2)),
        outbox={"pending": 0, "sent": 1, "failed": 2, "unconfirmed": 1},
        delivery_cause="[smtp] username is set but SCHEDULER_SMTP__PASSWORD is not",
        store_error=None,
    )
    found = judge(status, HealthPolicy(timedelta(minutes=15), 2, require_daemon=True), T0)
    assert codes(found) == [
        "cycle-failed",
        "cycles-missed",
        "delivery-settings",
        "messages-failed",
        "messages-unconfirmed",
        "daemon-not-running",
    ]
    reasons = {f.code: f.reason for f in found}
    assert reasons["cycle-failed"] == (
        "the cycle started 2026-05-04 11:00:00+02:00 failed: OSError: x"
    )
    assert reasons["cycles-missed"].startswith(
        "2 or more scheduled cycles were missed, the first due 2026-05-05 11:00:00+02:00"
    )
    assert "SCHEDULER_SMTP__PASSWORD is not" in reasons["delivery-settings"]
    # one slot short of the limit, no daemon required: those two are not findings
    calmer = judge(status_of(last=last, outcome="ok", missed=(T0,)), POLICY, T0)
    assert calmer == ()


def test_an_orderly_stop_is_not_a_finding_but_a_dead_cycle_is() -> None:
    stopped: dict[str, object] = {
        "stopped": "the daemon was stopping",
        "error": "the daemon stopped: SIGTERM",
    }
    orderly = Run(1, "cycle", date(2026, 5, 4), T0, T0, RunOutcome.INTERRUPTED, stopped)
    status = status_of(last=orderly, outcome="interrupted")
    assert status.stopped
    assert judge(status, POLICY, T0) == ()
    # closed as interrupted by the next daemon (its process died), or never closed at all
    details: list[dict[str, object]] = [{}, {"error": "the daemon stopped"}]
    for detail in details:
        died = Run(1, "cycle", date(2026, 5, 4), T0, T0, RunOutcome.INTERRUPTED, detail)
        dead = status_of(last=died, outcome="interrupted")
        assert not dead.stopped
        assert codes(judge(dead, POLICY, T0)) == ["cycle-interrupted"]
    unfinished = Run(1, "cycle", date(2026, 5, 4), T0, None, None, {})
    assert codes(judge(status_of(last=unfinished, outcome="interrupted"), POLICY, T0)) == [
        "cycle-interrupted"
    ]


def test_status_of_a_store_whose_last_cycle_was_stopped_is_healthy(tmp_path: Path) -> None:
    setup(tmp_path)
    settings = settings_in(tmp_path)
    now = datetime.now(UTC)
    with store_in(tmp_path) as store:
        run_id = store.runs.start("cycle", now.date(), now)
        stopped = {"stopped": "the daemon was stopping", "error": "the daemon stopped: SIGTERM"}
        store.runs.finish(run_id, RunOutcome.INTERRUPTED, stopped, now)
    found = reminders.status(settings, tmp_path, now)
    assert found.outcome == "interrupted" and found.healthy, found.findings
    with store_in(tmp_path) as store:
        run_id = store.runs.start("cycle", now.date(), now)  # its process dies: no end
    found = reminders.status(settings, tmp_path, now)
    assert found.outcome == "interrupted"
    assert codes(found.findings) == ["cycle-interrupted"]


def test_the_default_delivery_threshold_is_three_drain_intervals(tmp_path: Path) -> None:
    setup(tmp_path, extra="drain_interval_seconds = 100")
    policy = reminders.health_policy(settings_in(tmp_path))
    assert policy.delivery_failing_after == timedelta(seconds=300)
    assert policy.missed_cycles == 2
    setup(tmp_path, extra="[health]\ndelivery_failing_seconds = 42\nmissed_cycles = 5")
    policy = reminders.health_policy(settings_in(tmp_path), require_daemon=True)
    assert policy == HealthPolicy(timedelta(seconds=42), 5, require_daemon=True)


# --------------------------------------------------------------------------- the command


def test_missed_cycles_make_status_unhealthy(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(tmp_path, schedule="0 9 * * *")  # daily
    monkeypatch.chdir(tmp_path)
    record_cycle(tmp_path, datetime.now(UTC) - timedelta(days=3))  # exactly three slots since
    down = run("status", "--format", "json")
    assert down.code == 1
    data = json.loads(down.out)
    assert data["healthy"] is False
    assert [f["code"] for f in data["findings"]] == ["cycles-missed"]
    assert len(data["missed_cycles"]) == 2  # counted up to the limit
    text = run("status")
    assert text.code == 1
    assert "Health: unhealthy\n  cycles-missed: 2 or more scheduled cycles were missed" in text.out
    setup(tmp_path, schedule="0 9 * * *", extra="[health]\nmissed_cycles = 4")
    assert run("status").code == 0  # three missed, four allowed
    setup(tmp_path, schedule="0 9 * * *", extra="[health]\nmissed_cycles = 3")
    assert run("status").code == 1


def test_a_recent_cycle_is_healthy_and_seconds_schedules_show_seconds(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(tmp_path, schedule="*/20 * * * * *")
    monkeypatch.chdir(tmp_path)
    result = run("status")
    assert result.code == 0
    (line,) = [x for x in result.out.splitlines() if x.startswith("Next cycle: ")]
    moment = line.removeprefix("Next cycle: ").split(" UTC")[0]
    assert datetime.fromisoformat(moment).second in (0, 20, 40)
    assert len(moment.split(" ")[1].split("+")[0]) == len("12:34:56")
    setup(tmp_path, schedule="30 9 * * *")
    assert "09:30+00:00 UTC (schedule '30 9 * * *')" in run("status").out


@contextmanager
def failing_relay(tmp_path: Path) -> Iterator[SmtpServer]:
    with running_server(tmp_path) as server:
        server.handler.faults.data_replies = ["451 4.3.0 try later"] * 20
        yield server


def test_delivery_failing_too_long_makes_status_unhealthy(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with failing_relay(tmp_path) as server:
        setup(tmp_path, server)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SCHEDULER_SMTP__PASSWORD", PASSWORD)
        assert run("send", "--as-of", date.today().isoformat()).code == 0
    settings = settings_in(tmp_path)
    now = datetime.now(UTC)
    fresh = reminders.status(settings, tmp_path, now)
    assert fresh.failing is not None and fresh.failing.messages == 2
    assert fresh.healthy  # failing for seconds, not for three drain intervals (15 minutes)
    later = reminders.status(settings, tmp_path, fresh.failing.since + timedelta(seconds=901))
    assert codes(later.findings) == ["delivery-failing"]
    assert "last reply: 451 4.3.0 try later" in later.findings[0].reason
    # the threshold is a setting; the command line judges with the clock
    monkeypatch.setenv("SCHEDULER_HEALTH__DELIVERY_FAILING_SECONDS", "0.000001")
    result = run("status", "--format", "json")
    assert result.code == 1
    data = json.loads(result.out)
    assert data["delivery_failing"]["messages"] == 2
    assert data["delivery_failing"]["last_code"] == 451
    assert [f["code"] for f in data["findings"]] == ["delivery-failing"]


def test_require_daemon_and_a_real_daemon(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    env = setup(tmp_path, schedule=f"0 {(now.hour + 12) % 24} * * *")
    bare = cli(tmp_path, env, "status", "--require-daemon")
    assert bare.returncode == 1
    assert "daemon-not-running: no daemon is running on this state store" in bare.stdout
    assert not (tmp_path / ".review-scheduler").exists()  # looking created no store
    assert cli(tmp_path, env, "status").returncode == 0
    daemon = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "daemon", "--log-format", "json"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stderr is not None
        for line in daemon.stderr:  # wait until it holds the store
            if "daemon started" in line:
                break
        watched = cli(tmp_path, env, "status", "--require-daemon", "--format", "json")
        assert watched.returncode == 0, watched.stdout
        assert json.loads(watched.stdout)["daemon"] == {"running": True, "pid": daemon.pid}
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
        assert daemon.stderr is not None
        daemon.stderr.close()
    assert cli(tmp_path, env, "status", "--require-daemon").returncode == 1


def test_a_running_send_is_running_and_a_killed_one_interrupted(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        env = setup(tmp_path, server)
        # the first message is stored, then the relay keeps the sender waiting
        server.handler.faults.slow_data = [60]
        send = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "send"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            server.handler.wait_for(1, timeout=60)  # the send is mid-cycle now
            live = cli(tmp_path, env, "status", "--format", "json")
            assert live.returncode == 0, live.stdout
            data = json.loads(live.stdout)
            assert data["last_cycle"]["outcome"] == "running"
            assert data["daemon"]["running"] is False
            assert "interrupted" not in cli(tmp_path, env, "status").stdout
        finally:
            send.kill()  # a dead holder: its mark goes with it
            send.wait(30)
        dead = cli(tmp_path, env, "status")
        assert dead.returncode == 1
        assert ": interrupted: " in dead.stdout
        assert "cycle-interrupted: the cycle started " in dead.stdout


# --------------------------------------------------------------------------- the store


def as_plain_user() -> list[str]:
    """A command prefix under which file permissions hold. Root ignores them (CI runs as root),
    so as root the command runs without the capabilities that let it."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable"]


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    files = [p for p in folder.iterdir() if p.is_file()]
    for path in files:
        path.chmod(0o444)
    folder.chmod(0o555)
    try:
        yield
    finally:
        folder.chmod(0o755)
        for path in files:
            path.chmod(0o644)


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_status_outbox_and_history_work_on_a_read_only_store(tmp_path: Path) -> None:
    env = setup(tmp_path)
    assert cli(tmp_path, env, "send").returncode == 0
    folder = tmp_path / STORE.parent
    before = listing(folder)
    assert {"state.sqlite3-wal", "state.sqlite3-shm"}.isdisjoint(before)  # closed cleanly
    with read_only(folder):
        prefix = as_plain_user()
        # the prefix really takes write access away
        touch = subprocess.run([*prefix, "touch", str(folder / "probe")], capture_output=True)
        assert touch.returncode != 0
        for args in (["status", "--format", "json"], ["outbox"], ["history"]):
            done = subprocess.run(
                [*prefix, sys.executable, "-m", "scheduler", *args],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            if args[0] == "status":
                data = json.loads(done.stdout)
                assert data["healthy"] is True and data["last_cycle"]["outcome"] == "ok"
                assert data["outbox"]["sent"] == 2  # written to the .eml outbox folder
        # a command that writes says what to do, in one line, with exit code 2
        refused = subprocess.run(
            [*prefix, sys.executable, "-m", "scheduler", "send"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1
        assert "the state store .review-scheduler/state.sqlite3: " in refused.stderr
        assert "give the user running review-scheduler write access" in refused.stderr
    assert listing(folder) == before  # nothing was written or created


def test_an_unreadable_daemon_lock_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    env = setup(tmp_path)
    lock = tmp_path / ".review-scheduler" / "state.sqlite3.lock"
    assert cli(tmp_path, env, "send").returncode == 0
    lock.write_text("")
    lock.chmod(0o000)
    try:
        done = subprocess.run(
            [*as_plain_user(), sys.executable, "-m", "scheduler", "status"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        lock.chmod(0o644)
    assert done.returncode == 1, done.stderr
    assert "store-unreadable: the state store cannot be read: cannot read the daemon lock" in (
        done.stdout
    )


def damage(path: Path, header: bool) -> None:
    """Write garbage over the file's pages (and its header too, if ``header``)."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(0 if header else 4096)
        handle.write(bytes((i * 37 + 11) % 256 for i in range(size - (0 if header else 4096))))


@pytest.mark.parametrize("header", [False, True], ids=["malformed-pages", "not-a-database"])
def test_status_prints_json_for_a_damaged_store(tmp_path: Path, header: bool) -> None:
    env = setup(tmp_path)
    assert cli(tmp_path, env, "send").returncode == 0
    damage(tmp_path / STORE, header)
    result = cli(tmp_path, env, "status", "--format", "json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["healthy"] is False
    assert [f["code"] for f in data["findings"]] == ["store-unreadable"]
    assert data["store_error"].startswith("the state store .review-scheduler/state.sqlite3: ")
    assert (
        "damaged" in data["store_error"]
        or "not a review-scheduler state store" in (data["store_error"])
    )
    text = cli(tmp_path, env, "status")
    assert text.returncode == 1
    assert "State store: unreadable: the state store .review-scheduler/state.sqlite3" in text.stdout
    # every other command: one line naming the file and what to do, exit 2 (not 3)
    for args in (["send"], ["outbox"], ["history"]):
        other = cli(tmp_path, env, *args)
        assert other.returncode == 2, (args, other.stderr)
        (line,) = other.stderr.splitlines()
        assert line.startswith("review-scheduler: error: the state store ")
        assert "restore it from a backup" in line or "move the file aside" in line


# --------------------------------------------------------------------------- looking creates none


def test_read_only_commands_never_create_a_store(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args in (
        ["status"],
        ["outbox"],
        ["outbox", "--format", "json"],
        ["history"],
        ["send", "--dry-run"],
        ["snooze", "--list"],
        ["outbox", "retry", "--all"],
    ):
        result = run(*args)
        assert result.code == 0, (args, result.err)
        assert not (tmp_path / ".review-scheduler").exists(), args


def test_outbox_retry_takes_config_like_every_command(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    library_root = tmp_path / "library"
    with running_server(tmp_path) as server:
        setup(library_root, server)
        config = library_root / "config" / "scheduler.toml"
        config.write_text(
            config.read_text().replace(
                '[content]\nroot = "docs"',
                f'[content]\nroot = "{library_root / "docs"}"\n[store]\n'
                f'url = "sqlite:///{library_root / STORE}"',
            )
        )
        monkeypatch.setenv("SCHEDULER_SMTP__PASSWORD", PASSWORD)
        server.handler.faults.rcpt_replies = {"editor0@example.org": ["550 5.1.1 no such user"]}
        monkeypatch.chdir(tmp_path)  # another folder: only --config finds the store
        assert run("send", "--config", str(config)).code == 1
        assert run("outbox", "--config", str(config), "--state", "failed").code == 1
        retried = run("outbox", "retry", "--all", "--config", str(config))
        assert retried.code == 0, retried.err
        assert retried.out == "Queued 1 again: 1 delivered, 0 waiting for a retry, 0 failed.\n"
        # the group's --config still works too
        assert run("outbox", "--config", str(config), "retry", "--all").out.startswith(
            "Queued 0 again"
        )
    assert sorted(r for m in server.handler.received for r in m.recipients) == [
        "editor0@example.org",
        "editor1@example.org",
    ]
    assert not (tmp_path / ".review-scheduler").exists()
    assert stat.S_ISREG((library_root / STORE).stat().st_mode)


def test_a_store_written_by_a_newer_version_is_refused_read_only(tmp_path: Path) -> None:
    env = setup(tmp_path)
    assert cli(tmp_path, env, "send").returncode == 0
    db = sqlite3.connect(tmp_path / STORE)
    with db:
        db.execute("UPDATE schema_steps SET version = 99 WHERE component = 'reminders'")
    db.close()
    result = cli(tmp_path, env, "outbox")
    assert result.returncode == 2
    assert "written by a newer review-scheduler (reminders schema 99" in result.stderr
    assert "upgrade review-scheduler" in result.stderr


def test_looking_at_a_store_with_only_the_parse_cache_changes_nothing(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run("check").code == 1  # overdue documents; the parse cache is written
    folder = tmp_path / STORE.parent
    before = listing(folder)
    for args in (["status"], ["outbox"], ["history"], ["snooze", "--list"], ["send", "--dry-run"]):
        assert run(*args).code == 0, args
    assert "Last cycle: none recorded" in run("status").out
    after = listing(folder)
    # a reader may leave SQLite's (empty) write-ahead log and its index; the store is untouched
    assert after.pop("state.sqlite3-wal", (0, 0))[0] == 0
    after.pop("state.sqlite3-shm", None)
    before.pop("state.sqlite3-shm", None)
    before.pop("state.sqlite3-wal", None)
    # the validated settings are kept beside the store (the first run after the folder exists
    # writes them); they are not the store
    assert after.pop("settings-cache.json", None) is not None
    assert after == before
    db = sqlite3.connect(tmp_path / STORE)
    try:  # the reminder and review tables were read as empty, not created
        assert db.execute("SELECT component FROM schema_steps").fetchall() == [("parse_cache",)]
    finally:
        db.close()
