"""The PostgreSQL store: delivery by three replicas against one, and a cycle over a large library
against the SQLite store (with the parse cache local, and in PostgreSQL).

Run by hand from the repository root, with the test extras installed and Debian's PostgreSQL
server on the machine (a throwaway cluster is started in a temporary folder):

    pip install -e '.[test]' && python bench/bench_store.py                 # 100,000 documents
    python bench/bench_store.py --documents 5000 --messages 300            # a quick look

Delivery: N digests queued in one PostgreSQL store, delivered to a real SMTP server on loopback
(aiosmtpd, STARTTLS, AUTH) that takes ``--relay-latency`` seconds to answer each message, as a
real relay does; once by one process running the product's delivery loop, once by three such
processes at the same time. Every message must arrive exactly once.

Cycle: ``review-scheduler send`` over the library of ``bench_check.py`` (``bench/corpus``), each
run its own process, with its digests written as .eml files: a cold run (new store, empty parse
cache) then a warm one, against SQLite, PostgreSQL with the parse cache in a local file (the
default), and PostgreSQL with the parse cache in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_smtp
import corpus_gen

from scheduler.config import DeliverySettings, SmtpSettings, StoreSettings
from scheduler.config_schema import Secret
from scheduler.notify.delivery import deliver_pending
from scheduler.notify.email import SmtpChannel
from scheduler.notify.outbox import Outbox
from scheduler.store import open_store
from tests.pg_server import PgCluster
from tests.smtp_server import PASSWORD, running_server

BENCH = Path(__file__).resolve().parent
AS_OF = "2026-11-27"


# ----------------------------------------------------------------------------- delivery


def _replica(url: str, smtp: dict[str, object], start: float) -> tuple[int, float]:
    """One replica's delivery loop, until the outbox is empty: the messages it delivered, and
    when it finished."""
    settings = SmtpSettings(**smtp, password=Secret(PASSWORD))  # type: ignore[arg-type]
    with open_store(StoreSettings(url=url), Path.cwd()) as store:
        time.sleep(max(0.0, start - time.time()))  # all replicas begin together, imports done
        report = asyncio.run(
            deliver_pending(
                Outbox(store),
                SmtpChannel(settings),
                DeliverySettings(lease_seconds=60),
                30,
                lambda: datetime.now(UTC),
            )
        )
    return report.delivered, time.time()


def deliver(cluster: PgCluster, replicas: int, messages: int, latency: float, tmp: Path) -> float:
    """Messages per second with ``replicas`` processes delivering one outbox."""
    url = cluster.url(cluster.database())
    tmp.mkdir(parents=True, exist_ok=True)
    plan, notes = bench_smtp.digests(messages)
    with open_store(StoreSettings(url=url), tmp) as store:
        Outbox(store).enqueue(plan, notes, datetime.now(UTC) - timedelta(seconds=1))
    with running_server(tmp) as server:
        server.handler.faults.slow_data = [latency] * messages if latency else []
        smtp = server.settings(timeout_seconds=30, message_deadline_seconds=30)
        start = time.time() + 5.0  # time enough to start the processes
        with multiprocessing.get_context("spawn").Pool(replicas) as pool:
            pending = [pool.apply_async(_replica, (url, smtp, start)) for _ in range(replicas)]
            finished = [p.get(timeout=3600) for p in pending]
        delivered = [count for count, _ in finished]
        elapsed = max(end for _, end in finished) - start
        received = [r for m in server.handler.received for r in m.recipients]
    assert sum(delivered) == messages, delivered
    assert len(received) == len(set(received)) == messages, "a message was sent twice or lost"
    with open_store(StoreSettings(url=url), tmp) as store:
        assert store.outbox.counts() == {"pending": 0, "sent": messages, "failed": 0}
    rate = messages / elapsed
    print(
        f"  {replicas} replica(s): {messages} messages in {elapsed:7.2f} s = {rate:7.1f} msg/s"
        f"  (each delivered {delivered})"
    )
    return rate


# ----------------------------------------------------------------------------- cycle


def cycle(corpus: Path, store_url: str, cache_url: str | None, cwd: Path) -> float:
    """Seconds one ``send`` process takes over the library."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env |= {
        "SCHEDULER_CONFIG": str(corpus / "config" / "scheduler.toml"),
        "SCHEDULER_CONTENT__ROOT": str(corpus / "docs"),
        "SCHEDULER_STORE__URL": store_url,
        "SCHEDULER_MAIL__FROM_ADDRESS": "reviews@example.org",
        "SCHEDULER_MAIL__OUTBOX_DIR": str(cwd / "outbox"),
        "HOME": str(cwd),
    }
    if cache_url is not None:
        env["SCHEDULER_STORE__CACHE_URL"] = cache_url
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scheduler", "send", "--as-of", AS_OF],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"send failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def cycles(cluster: PgCluster, corpus: Path, tmp: Path) -> dict[str, tuple[float, float]]:
    results = {}
    for label in ("SQLite", "PostgreSQL, parse cache local", "PostgreSQL, parse cache in PG"):
        cwd = tmp / label.replace(" ", "_").replace(",", "")
        cwd.mkdir()
        if label == "SQLite":
            url, cache = "sqlite:///.review-scheduler/state.sqlite3", None
        else:
            url = cluster.url(cluster.database())
            cache = url if label.endswith("in PG") else None
        cold = cycle(corpus, url, cache, cwd)
        shutil.rmtree(cwd / "outbox", ignore_errors=True)
        warm = cycle(corpus, url, cache, cwd)
        results[label] = (cold, warm)
        print(f"  {label:<32} cold {cold:7.2f} s   warm {warm:7.2f} s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--relay-latency", type=float, default=0.05)
    parser.add_argument("--skip-cycle", action="store_true")
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # the test server's chatter
    cluster = PgCluster()
    try:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            for latency in (args.relay_latency, 0.0):
                print(f"Delivery, relay latency {latency * 1000:.0f} ms per message:")
                one = deliver(cluster, 1, args.messages, latency, tmp / f"one-{latency}")
                three = deliver(cluster, 3, args.messages, latency, tmp / f"three-{latency}")
                print(f"  ratio three / one: {three / one:.2f}x")
            if not args.skip_cycle:
                corpus = corpus_gen.generate(BENCH / "corpus", args.documents)
                print(f"Cycle (send) over {args.documents} documents:")
                found = cycles(cluster, corpus, tmp)
                base_cold, base_warm = found["SQLite"]
                for label, (cold, warm) in found.items():
                    print(
                        f"  {label:<32} / SQLite: cold {cold / base_cold:.2f}x, "
                        f"warm {warm / base_warm:.2f}x"
                    )
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
