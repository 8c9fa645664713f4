"""The background service: APScheduler runs the reminder cycle on its schedule and drains the
outbox between cycles, around the same use cases the command line calls.

All lasting state is in the state store: jobs live in APScheduler's memory job store and are
added again, with fixed ids, at every start. On a SQLite store, one daemon at a time (an
exclusive lock). On a shared store (PostgreSQL) several daemons, on one host or several, work
together: each drains the outbox (claims never overlap), and the one holding the cycle lease runs
the scheduled cycles; when it dies its lease runs out and another takes over. A cycle missed, or
left unfinished, runs once, by the lease holder, decided from the run history. When the store is
unreachable the daemon carries on, logs it, and resumes when it is back. SIGTERM and SIGINT stop
new work, let the message being sent finish within a grace period, and leave everything
unfinished in the outbox for the next start.

On a SQLite store, before each cycle and each drain (and every few seconds in between) the
daemon checks that it still holds the lock on the very store it opened; when the store or its
lock was deleted or replaced it stops with exit status 2, so that a second daemon never works
beside it for long. A shared store has no such lock to lose: there the cycle lease, renewed
before each cycle, decides who runs cycles, and a store that is away is waited for.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.config import Settings
from scheduler.errors import StoreError
from scheduler.notify.channel import Channel
from scheduler.notify.delivery import deliver_pending, worker_id
from scheduler.notify.email import check_delivery_settings, make_channel
from scheduler.notify.outbox import Outbox
from scheduler.runtime.cycle import CYCLE, CycleStopped, run_cycle
from scheduler.runtime.schedule import LocalCronTrigger, missed_cycle
from scheduler.store import (
    Replica,
    RunHistory,
    RunOutcome,
    StateStore,
    location,
    open_store,
)
from scheduler.usecases.publish import publish_dashboard

log = logging.getLogger(__name__)

CYCLE_JOB = "reminder-cycle"
DRAIN_JOB = "outbox-drain"
CATCH_UP_JOB = "catch-up-cycle"
WATCH_JOB = "store-watch"
# Between cycles and drains too, how often the daemon checks it still holds its store's lock.
STORE_WATCH_SECONDS = 5.0
# After the grace period, how long a cancelled job may take to end (closing connections).
CANCEL_WAIT_SECONDS = 10.0
HEARTBEAT_JOB = "heartbeat"
CYCLE_LEASE = "cycle"  # the lease whose holder runs the cycles


def utc_now() -> datetime:
    return datetime.now(UTC)


def cycle_trigger(settings: Settings) -> LocalCronTrigger:
    return LocalCronTrigger(settings.daemon.schedule, settings.review.zone)


def catch_up_due(runs: RunHistory, trigger: LocalCronTrigger, now: datetime) -> tuple[bool, str]:
    """Whether a cycle must run at start-up, and why. From the run history only."""
    last = runs.last(CYCLE)
    if last is None:
        return False, "no cycle has run yet"
    if last.outcome is RunOutcome.INTERRUPTED:
        return (
            True,
            f"the cycle started {last.started_at.isoformat(timespec='seconds')} was interrupted",
        )
    missed = missed_cycle(trigger, last.started_at, now)
    if missed is not None:
        return True, f"the cycle due {missed.isoformat(timespec='seconds')} was missed"
    return False, "no cycle was missed"


def release_memory() -> None:
    """After a cycle, collect every generation of garbage and hand the C allocator's free
    memory back to the system (glibc's ``malloc_trim``, where there is one), so that what a
    daemon holds between cycles is what one cycle needs, not what many left scattered."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to trim
    return trim


class Daemon:
    def __init__(
        self,
        settings: Settings,
        cwd: Path,
        channel_factory: Callable[[], Channel] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.cwd = cwd
        self.clock = clock
        if channel_factory is None:
            check_delivery_settings(settings)  # before anything starts: exit 2 naming it
        self.channel_factory = channel_factory or (
            lambda: make_channel(settings.smtp, settings.mail.outbox_dir)
        )
        self.trigger = cycle_trigger(settings)
        self.stop = asyncio.Event()
        self._work = asyncio.Lock()  # one job at a time: cycles and drains both deliver
        self._running: asyncio.Task[None] | None = None
        self._store: StateStore | None = None
        self.exit_code = 0
        self._scheduler: AsyncIOScheduler | None = None
        self.replica = worker_id()  # who this daemon is, in leases and heartbeats
        self._started_at = clock()
        self._lease = timedelta(seconds=settings.daemon.cycle_lease_seconds)
        self._leading_until: datetime | None = None  # the cycle lease, as last renewed
        self._store_down_since: datetime | None = None

    def request_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            log.info("shutdown requested (%s): finishing the message in flight", reason)
            self.stop.set()

    async def run(self) -> int:
        """Serve until SIGTERM or SIGINT, holding the store's daemon lock (a
        :class:`~scheduler.errors.StoreError` when another daemon holds it)."""
        with ExitStack() as stack:
            store = stack.enter_context(open_store(self.settings.store, self.cwd))
            if not store.shared:
                stack.enter_context(store.lock())
            self._store = store
            try:
                return await self._serve(store)
            finally:
                self._store = None
                self._leave(store)

    def _leave(self, store: StateStore) -> None:
        """Hand the cycle lease on at once and stop reporting (best effort: the lease runs out
        anyway)."""
        try:
            if self._leading_until is not None and store.shared:
                store.replicas.resign(CYCLE_LEASE, self.replica)
            store.replicas.forget(self.replica)
        except StoreError as exc:
            log.warning("could not hand on the cycle lease: %s", exc)

    async def _serve(self, store: StateStore) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signal.Signals(signum).name)
        now = self.clock()
        leading = self._lead(store, now)
        zone = self.settings.review.zone
        scheduler = AsyncIOScheduler(timezone=zone)
        self._scheduler = scheduler
        options = {
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": None,
            "replace_existing": True,
        }
        scheduler.add_job(
            self._cycle,
            self.trigger,
            id=CYCLE_JOB,
            name="reminder cycle",
            kwargs={"reason": "scheduled"},
            **options,
        )
        scheduler.add_job(
            self._drain,
            IntervalTrigger(seconds=self.settings.daemon.drain_interval_seconds, timezone=zone),
            id=DRAIN_JOB,
            name="outbox drain",
            next_run_time=now,
            **options,
        )
        scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=self._lease.total_seconds() / 3, timezone=zone),
            id=HEARTBEAT_JOB,
            name="heartbeat",
            **options,
        )
        if not store.shared:  # a shared store has no lock to lose: see _store_lost
            scheduler.add_job(
                self._watch_store,
                IntervalTrigger(seconds=STORE_WATCH_SECONDS, timezone=zone),
                id=WATCH_JOB,
                name="store watch",
                **options,
            )
        if leading:
            catch_up, why = self._take_charge(store, now)
        else:
            catch_up, why = False, self._standby_reason(store)
        scheduler.start()
        next_cycle = self.trigger.next_after(now)
        log.info(
            "daemon started: store %s, schedule %r in %s, next cycle %s, %s",
            location(self.settings.store),
            self.settings.daemon.schedule,
            zone.key,
            next_cycle.isoformat(timespec="seconds") if next_cycle else "never",
            f"catching up ({why})" if catch_up else why,
        )
        try:
            await self.stop.wait()
        finally:
            scheduler.pause()  # no new jobs (shutting down now would cancel the running one)
            await self._finish_running_job()
            scheduler.shutdown(wait=False)
            loop.remove_signal_handler(signal.SIGTERM)
            loop.remove_signal_handler(signal.SIGINT)
        if self.exit_code:
            log.error("daemon stopped: exit status %d", self.exit_code)
        else:
            log.info("daemon stopped")
        return self.exit_code

    # ----- the cycle lease and heartbeats

    def _lead(self, store: StateStore, now: datetime) -> bool:
        """Take or renew the cycle lease and report this replica; whether it holds the lease.
        Logs when it takes the lease over from another replica, or loses it."""
        store.replicas.heartbeat(
            Replica(self.replica, socket.gethostname(), os.getpid(), self._started_at, now)
        )
        if not store.shared:  # the store's lock makes this the only daemon
            self._leading_until = datetime.max.replace(tzinfo=UTC)
            return True
        lease = store.replicas.lead(CYCLE_LEASE, self.replica, now, self._lease)
        held = lease.holder == self.replica
        was_leading = self._leading_until is not None and now < self._leading_until
        taken = held and not was_leading and lease.acquired_at == now
        if taken and lease.previous and lease.previous != self.replica:
            log.warning(
                "took over the cycle lease from %s, whose lease ran out (it stopped or lost the "
                "state store)",
                lease.previous,
            )
        elif not held and self._leading_until is not None:
            log.warning("lost the cycle lease to %s: it runs the cycles now", lease.holder)
        self._leading_until = lease.until if held else None
        if taken and self._scheduler is not None and not self._work.locked():
            self._take_charge(store, now)
        return held

    def _standby_reason(self, store: StateStore) -> str:
        lease = store.replicas.leader(CYCLE_LEASE)
        holder = lease.holder if lease is not None else "nobody"
        return f"standing by for cycles: {holder} holds the cycle lease"

    def leading(self) -> bool:
        return self._leading_until is not None and self.clock() < self._leading_until

    def _take_charge(self, store: StateStore, now: datetime) -> tuple[bool, str]:
        """As the new holder of the cycle lease: close the cycles left unfinished by whoever
        held it, and schedule a catch-up cycle when one is due. Returns (catching up, why)."""
        interrupted = store.runs.mark_interrupted(CYCLE, now)
        if interrupted:
            log.warning(
                "%d cycle(s) left unfinished (their daemon stopped or lost the state store) "
                "were closed",
                interrupted,
            )
        catch_up, why = catch_up_due(store.runs, self.trigger, now)
        if catch_up and self._scheduler is not None:
            self._scheduler.add_job(
                self._cycle,
                DateTrigger(now, timezone=self.settings.review.zone),
                id=CATCH_UP_JOB,
                name="catch-up cycle",
                kwargs={"reason": f"catch-up: {why}"},
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
                replace_existing=True,
            )
            if self._scheduler.running:
                log.info("catching up (%s)", why)
        return catch_up, why

    async def _heartbeat(self) -> None:
        store = self._store
        if store is None or self.stop.is_set():
            return
        now = self.clock()
        try:
            self._lead(store, now)
        except StoreError as exc:
            self._unreachable("no heartbeat", exc)
            return
        if self._store_down_since is not None:
            log.info(
                "the state store is reachable again after %.0f s",
                (now - self._store_down_since).total_seconds(),
            )
            self._store_down_since = None
            if self.leading() and not self._work.locked():
                # a cycle may have failed, or been missed, meanwhile
                self._take_charge(store, now)

    async def _finish_running_job(self) -> None:
        task = self._running
        if task is None or task.done():
            return
        grace = self.settings.daemon.shutdown_grace_seconds
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            log.warning(
                "the job did not finish within %.0f s; abandoning it (its messages stay "
                "in the outbox)",
                grace,
            )
            task.cancel()
            _, pending = await asyncio.wait({task}, timeout=CANCEL_WAIT_SECONDS)
            if pending:
                log.warning("the job did not end when cancelled; stopping without it")

    def _store_lost(self) -> bool:
        """Whether the store or its lock was lost (then logged, and the daemon stopping).
        Never on a shared store: the daemon holds no lock there (the cycle lease, renewed
        before each cycle, says whether it runs cycles), and an unreachable store is waited
        for, not a reason to stop."""
        assert self._store is not None
        if self._store.shared:
            return False
        try:
            self._store.ensure_locked()
        except StoreError as exc:
            if not self.exit_code:
                log.error("%s", exc)
            self.exit_code = exc.exit_code
            self.request_stop("the state store or its lock was lost")
            return True
        return False

    async def _watch_store(self) -> None:
        """Check the lock between jobs too, even while a long one runs."""
        if not self.stop.is_set():
            self._store_lost()

    async def _exclusively(self, failure: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` as the one job at a time (cycles and drains both deliver), unless the
        daemon is stopping; a failure is logged as ``failure`` and the daemon carries on."""
        async with self._work:
            if self.stop.is_set():
                return
            if self._store_lost():
                return
            self._running = asyncio.current_task()
            try:
                await job()
            except CycleStopped as exc:
                log.info("cycle stopped: %s; it runs again at the next start", exc)
            except StoreError as exc:
                self._unreachable(failure, exc)
            except Exception:
                log.exception("%s", failure)
            finally:
                self._running = None

    async def _cycle(self, reason: str) -> None:
        today = self.clock().astimezone(self.settings.review.zone).date()
        if not self._still_leading():
            log.info("cycle for %s left to the holder of the cycle lease", today.isoformat())
            return
        await self._exclusively(
            f"cycle for {today.isoformat()} failed", lambda: self._run_cycle(today, reason)
        )

    async def _run_cycle(self, today: date, reason: str) -> None:
        assert self._store is not None
        log.info("cycle begun for %s (%s)", today.isoformat(), reason)
        report = await run_cycle(
            self.settings,
            self.cwd,
            today,
            self.clock,
            self._store,
            self.channel_factory(),
            self.stop,
        )
        counts = report.summary()
        log.info(
            "cycle ended for %s: %d documents, %d outstanding, %d digests queued, "
            "%d delivered, %d waiting for a retry, %d failed",
            today.isoformat(),
            counts["documents"],
            counts["outstanding"],
            counts["queued"],
            counts["delivered"],
            counts["retrying"],
            counts["failed"],
        )
        self._refresh_dashboard(today)
        release_memory()

    def _still_leading(self) -> bool:
        """Renew the cycle lease before a cycle: only its holder runs the cycle."""
        assert self._store is not None
        try:
            return self._lead(self._store, self.clock())
        except StoreError as exc:
            self._unreachable("no cycle", exc)
            return False

    def _unreachable(self, what: str, exc: StoreError) -> None:
        """Log that the store failed: the first time as a warning, then, while it stays away,
        as debug lines; the heartbeat says when it is back."""
        if self._store_down_since is None:
            self._store_down_since = self.clock()
            log.warning("the state store is unreachable; carrying on (%s): %s", what, exc)
        else:
            log.debug("%s: %s", what, exc)

    def _refresh_dashboard(self, today: date) -> None:
        """Write the dashboard to ``[dashboard] out``, when set, after a cycle. A failure is
        logged; the cycle stands."""
        out = self.settings.dashboard.out
        if out is None:
            return
        try:
            written = publish_dashboard(self.settings, self.cwd, today, out)
        except Exception:
            log.exception("writing the dashboard to %s failed", out)
            return
        log.info(
            "dashboard for %s written to %s: %d documents, %d calendar feeds",
            today.isoformat(),
            written.index,
            written.documents,
            written.feeds,
        )

    async def _drain(self) -> None:
        await self._exclusively("draining the outbox failed", self._run_drain)

    async def _run_drain(self) -> None:
        assert self._store is not None
        report = await deliver_pending(
            Outbox(self._store),
            self.channel_factory(),
            self.settings.delivery,
            self.settings.smtp.message_deadline_seconds,
            self.clock,
            stop=self.stop,
        )
        if report.delivered or report.failed or report.retrying:
            log.info(
                "outbox drained: %d delivered, %d waiting for a retry, %d failed",
                report.delivered,
                report.retrying,
                report.failed,
            )
