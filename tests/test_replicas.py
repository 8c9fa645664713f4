"""Several daemons sharing one PostgreSQL store, as real processes, against a real SMTP server:
every editor gets exactly one digest; a killed lease holder is taken over; the database going
away for a while loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import StoreSettings
from scheduler.store import RunOutcome, open_store

from .conftest import REPO, frontmatter, write_doc
from .pg_server import PgCluster
from .smtp_server import PASSWORD, SmtpServer, running_server
from .test_daemon import DaemonProcess

EDITORS = 200


def poll(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait until ``condition`` holds (checked every 50 ms), or fail after a generous
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def shared_library(
    root: Path, server: SmtpServer, url: str, editors: int = EDITORS
) -> dict[str, str]:
    """``EDITORS`` overdue documents, one per editor, and a config for daemons sharing ``url``.

    Short leases make a takeover quick: a cycle lease of 3 s, message leases of 6 s (two messages
    per claim with a 2 s deadline per message); outbox drains every second."""
    for i in range(editors):
        write_doc(
            root / "docs" / f"page-{i}.md",
            frontmatter(
                title=f"Page {i}", lastReviewed="2025-01-10", owner=f"editor{i}@example.org"
            ),
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
lease_seconds = 6
[daemon]
schedule = "*/3 * * * * *"
drain_interval_seconds = 1
shutdown_grace_seconds = 20
cycle_lease_seconds = 3
[store]
url = "{url}"
[smtp]
host = "{server.host}"
port = {server.port}
username = "scheduler"
ca_file = "{server.ca_file}"
message_deadline_seconds = 2
""",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "PG"))}
    env |= {"HOME": str(root), "SCHEDULER_SMTP__PASSWORD": PASSWORD, "PYTHONPATH": str(REPO)}
    return env


@pytest.fixture
def replicas() -> Iterator[Callable[[Path, dict[str, str], int], list[DaemonProcess]]]:
    started: list[DaemonProcess] = []

    def start(cwd: Path, env: dict[str, str], count: int) -> list[DaemonProcess]:
        daemons = [DaemonProcess(cwd, env) for _ in range(count)]
        started.extend(daemons)
        return daemons

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def shared_url(pg_cluster: PgCluster) -> str:
    return pg_cluster.url(pg_cluster.database())


def recipients(server: SmtpServer) -> Counter[str]:
    with server.handler.lock:
        return Counter(r for m in server.handler.received for r in m.recipients)


def everyone(editors: int = EDITORS) -> set[str]:
    return {f"editor{i}@example.org" for i in range(editors)}


def outbox_counts(url: str) -> dict[str, int]:
    with open_store(StoreSettings(url=url), Path.cwd()) as store:
        return store.outbox.counts()


def lease_holder(url: str) -> str | None:
    with open_store(StoreSettings(url=url), Path.cwd()) as store:
        lease = store.replicas.leader("cycle")
        return lease.holder if lease is not None else None


def all_sent(url: str, editors: int = EDITORS) -> bool:
    return outbox_counts(url) == {"pending": 0, "sent": editors, "failed": 0}


def messages(daemon: DaemonProcess) -> list[str]:
    """Every log message of a daemon that has exited."""
    return [e["message"] for e in daemon.seen] + daemon.rest()


def stop_all(daemons: list[DaemonProcess]) -> list[list[str]]:
    for daemon in daemons:
        if daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGTERM)
    for daemon in daemons:
        daemon.proc.wait(30)
    return [messages(d) for d in daemons]


def test_three_daemons_send_each_editor_exactly_one_digest(
    tmp_path: Path, shared_url: str, replicas: Any
) -> None:
    with running_server(tmp_path) as server:
        env = shared_library(tmp_path, server, shared_url)
        server.handler.faults.slow_data = [0.02] * EDITORS  # long enough for all to join in
        daemons = replicas(tmp_path, env, 3)
        poll(lambda: all_sent(shared_url), "every digest to be sent")
        assert recipients(server) == Counter(everyone())  # each editor exactly once
        holder = lease_holder(shared_url)
        shown, text = (
            subprocess.run(
                [sys.executable, "-m", "scheduler", "status", "--format", fmt],
                cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=60,
            )
            for fmt in ("json", "text")
        )  # fmt: skip
        logs = stop_all(daemons)
    assert f"Cycle lease: {holder}\nReplicas seen recently: 3\n" in text.stdout
    assert text.stdout.count("(holds the cycle lease)") == 1
    status = json.loads(shown.stdout)
    assert sorted(r["pid"] for r in status["replicas"]) == sorted(d.proc.pid for d in daemons)
    assert status["cycle_lease"]["holder"] == holder
    assert [r["id"] for r in status["replicas"] if r["holds_cycle_lease"]] == [holder]
    assert status["daemon"]["running"] is True
    assert [d.proc.returncode for d in daemons] == [0, 0, 0]
    cycled = [i for i, log in enumerate(logs) if any("cycle begun" in m for m in log)]
    assert len(cycled) == 1, "exactly one daemon runs the cycles"
    (leader,) = cycled
    assert holder is not None and holder.split(":")[1] == str(daemons[leader].proc.pid)
    standby = [log for i, log in enumerate(logs) if i != leader]
    assert all(any("standing by for cycles" in m for m in log) for log in standby)
    assert all(any("cycle for" in m and "left to the holder" in m for m in log) for log in standby)
    # the others delivered in parallel with the cycle's own delivery
    delivering = [i for i, log in enumerate(logs) if any("delivered " in m for m in log)]
    assert len(delivering) >= 2
    assert all(PASSWORD not in m for log in logs for m in log)


def test_killing_the_lease_holder_mid_batch_loses_nothing(
    tmp_path: Path, shared_url: str, replicas: Any
) -> None:
    with running_server(tmp_path) as server:
        env = shared_library(tmp_path, server, shared_url)
        server.handler.faults.slow_data = [0.1] * 60  # messages stored, replies slow
        daemons = replicas(tmp_path, env, 3)
        server.handler.wait_for(20)
        holder = lease_holder(shared_url)
        assert holder is not None
        (victim,) = [d for d in daemons if holder.split(":")[1] == str(d.proc.pid)]
        victim.proc.kill()  # SIGKILL while the batch is being delivered
        victim.proc.wait(10)
        assert len(recipients(server)) < EDITORS  # it died mid-batch
        survivors = [d for d in daemons if d is not victim]
        poll(lambda: all_sent(shared_url), "the survivors to finish the batch")
        poll(lambda: lease_holder(shared_url) != holder, "a survivor to take the lease over")
        counts = recipients(server)
        logs = stop_all(survivors)
    assert set(counts) == everyone()  # none lost
    assert sum(counts.values()) - EDITORS <= 1  # at most the message in flight, twice
    assert any(any("took over the cycle lease from " + holder in m for m in log) for log in logs)


def test_the_database_away_for_ten_seconds_loses_nothing(
    tmp_path: Path, shared_url: str, replicas: Any, pg_cluster: PgCluster
) -> None:
    with running_server(tmp_path) as server:
        env = shared_library(tmp_path, server, shared_url)
        server.handler.faults.slow_data = [0.1] * 80
        daemons = replicas(tmp_path, env, 3)
        server.handler.wait_for(20)
        try:
            pg_cluster.stop()
            stopped = time.monotonic()
            for daemon in daemons:
                daemon.message("the state store is unreachable", timeout=60)
            time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))  # the outage lasts 10 s
            assert len(recipients(server)) < EDITORS  # the batch was interrupted
        finally:
            pg_cluster.start()
        for daemon in daemons:
            daemon.message("the state store is reachable again", timeout=60)
        poll(lambda: all_sent(shared_url), "the daemons to finish the batch")
        counts = recipients(server)
        assert all(d.proc.poll() is None for d in daemons)  # they kept running
        stop_all(daemons)
    assert set(counts) == everyone()  # nothing lost
    twice = [r for r, n in counts.items() if n > 1]
    assert all(counts[r] == 2 for r in twice)  # at most one duplicate per message...
    assert len(twice) <= len(daemons)  # ...and only those in flight (one per daemon)


def test_a_missed_cycle_is_caught_up_once_not_once_per_daemon(
    tmp_path: Path, shared_url: str, replicas: Any
) -> None:
    with running_server(tmp_path) as server:
        env = shared_library(tmp_path, server, shared_url, editors=5)
        config = tmp_path / "config" / "scheduler.toml"
        config.write_text(
            config.read_text().replace('"*/3 * * * * *"', '"0 9 * * *"'), encoding="utf-8"
        )
        long_ago = datetime.now(UTC) - timedelta(days=3)
        with open_store(StoreSettings(url=shared_url), tmp_path) as store:
            run = store.runs.start("cycle", long_ago.date(), long_ago)
            store.runs.finish(run, RunOutcome.OK, {}, long_ago)
        daemons = replicas(tmp_path, env, 3)
        poll(lambda: all_sent(shared_url, 5), "the catch-up cycle's digests to be sent")
        logs = stop_all(daemons)
        assert recipients(server) == Counter(everyone(5))
    catching_up = [log for log in logs if any("catching up" in m for m in log)]
    assert len(catching_up) == 1
    with open_store(StoreSettings(url=shared_url), tmp_path) as store:
        last = store.runs.last("cycle")
        assert last is not None and last.id == run + 1 and last.outcome is RunOutcome.OK
