"""The service's health: the figures ``status`` gathers, and the rules that judge them.

Pure: every rule takes the figures, the policy and ``now``, and returns a :class:`Finding` (a
code and a reason an operator can act on) or None. The service is healthy when no rule finds
anything. A new figure plugs in as a field of :class:`Status` and a rule in :data:`RULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.runtime.schedule import LocalCronTrigger
from scheduler.store import Failing, Lease, Replica, Run


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that makes the service unhealthy: a stable code and a reason."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """What counts as unhealthy ([health] settings, and ``status --require-daemon``)."""

    delivery_failing_after: timedelta
    missed_cycles: int
    require_daemon: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    """How the service is doing: the last and next cycle, the outbox, the daemon, and what
    makes it unhealthy."""

    last: Run | None
    outcome: str | None  # of the last cycle: ok, failed, running or interrupted
    next_cycle: datetime | None
    schedule: str
    timezone: str
    outbox: dict[str, int] = field(default_factory=dict)
    daemon_pid: int | None = None  # None also when a daemon runs whose process id is unknown
    daemon_running: bool = False
    missed: tuple[datetime, ...] = ()  # scheduled times since the last cycle began, a few
    failing: Failing | None = None  # messages waiting after failed attempts
    delivery_cause: str | None = None  # a settings problem found while delivering
    delivery_cause_since: datetime | None = None  # when it was first found
    store_error: str | None = None  # why the store could not be read
    # A shared store (PostgreSQL): the daemons seen recently, and who holds the cycle lease
    # (None when nobody does, or it ran out).
    shared: bool = False
    replicas: tuple[Replica, ...] = ()
    cycle_lease: Lease | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def stopped(self) -> bool:
        """Whether the last cycle was interrupted by an orderly stop (SIGTERM): not a fault."""
        return (
            self.outcome == "interrupted"
            and self.last is not None
            and "stopped" in self.last.detail
        )

    @property
    def healthy(self) -> bool:
        return not self.findings


Rule = Callable[[Status, HealthPolicy, datetime], Finding | None]


def _when(moment: datetime, status: Status) -> str:
    return moment.astimezone(ZoneInfo(status.timezone)).isoformat(sep=" ", timespec="seconds")


def store_unreadable(status: Status, policy: HealthPolicy, now: datetime) -> Finding | None:
    if status.store_error is None:
        return None
    return Finding("store-unreadable", f"the state store cannot be read: {status.store_error}")


def cycle_failed(status: Status, policy: HealthPolicy, now: datetime) -> Finding | None:
    if status.last is None or status.outcome not in ("failed", "interrupted"):
        return None
    if status.stopped:
        return None  # an orderly stop (SIGTERM): the cycle runs again at the next start
    started = _when(status.last.started_at, status)
    if status.outcome == "interrupted":
        return Finding(
            "cycle-interrupted",
            f"the cycle started {started} was interrupted (its process stopped before it ended)",
        )
    error = status.last.detail.get("error") or "no detail recorded"
    return Finding("cycle-failed", f"the cycle started {started} failed: {error}")


def cycles_missed(status: Status, policy: HealthPolicy, now: datetime) -> Finding | None:
    if len(status.missed) < policy.missed_cycles:
        return None
    assert status.last is not None  # nothing is missed before a first cycle
    return Finding(
        "cycles-missed",
        f"{len(status.missed)} or more scheduled cycles were missed, the first due "
        f"{_when(status.missed[0], status)}; the last cycle began "
        f"{_when(status.last.started_at, status)} (is the daemon running?)",
    )


def delivery_failing(status: Status, policy: HealthPolicy, now: datetime) -> Finding | None:
    failing = status.failing
    if failing is None or now - failing.since <= policy.delivery_failing_after:
        return None
    reply = failing.last_reply or "none"
    if failing.last_code is not None and not reply.startswith(str(failing.last_code)):
        reply = f"{failing.last_code} {reply}"
    return Finding(
        "delivery-failing",
        f"delivery has been failing since {_when(failing.since, status)} "
        f"({failing.messages} message(s) waiting for a retry); last reply: "
        f"{reply}",
    )


def delivery_settings(status: Status, policy: HealthPolicy, now: datetime) -> Finding | None:
    if status.delivery_cause is None:
        return None
    since = status.delivery_cause_since
    when = f" since {_when(since, status)}" if since is not None else ""
    return Finding("delivery-settings", f"nothing can be delivered{when}: {status.delivery_cause}")


def messages_failed(status: Status, policy: HealthPolicy, now: datetime) -> Finding | None:
    failed = status.outbox.get("failed", 0)
    if not failed:
        return None
    return Finding(
        "messages-failed",
        f"{failed} message(s) failed for good; see 'review-scheduler outbox --state failed' "
        "and 'outbox retry'",
    )


def messages_unconfirmed(status: Status, policy: HealthPolicy, now: datetime) -> Finding | None:
    unconfirmed = status.outbox.get("unconfirmed", 0)
    if not unconfirmed:
        return None
    return Finding(
        "messages-unconfirmed",
        f"{unconfirmed} message(s) may or may not have arrived; see 'review-scheduler outbox'",
    )


def daemon_missing(status: Status, policy: HealthPolicy, now: datetime) -> Finding | None:
    if not policy.require_daemon or status.daemon_running:
        return None
    return Finding("daemon-not-running", "no daemon is running on this state store")


RULES: tuple[Rule, ...] = (
    store_unreadable,
    cycle_failed,
    cycles_missed,
    delivery_failing,
    delivery_settings,
    messages_failed,
    messages_unconfirmed,
    daemon_missing,
)


def judge(status: Status, policy: HealthPolicy, now: datetime) -> tuple[Finding, ...]:
    """Every finding of every rule, in the rules' order."""
    return tuple(f for rule in RULES if (f := rule(status, policy, now)) is not None)


def missed_slots(
    trigger: LocalCronTrigger, last_started: datetime | None, now: datetime, limit: int
) -> tuple[datetime, ...]:
    """Up to ``limit`` scheduled times after the last cycle began and no later than ``now``
    (none before a first cycle: when the service was set up is not known)."""
    if last_started is None:
        return ()
    slots: list[datetime] = []
    fire = trigger.next_after(last_started, strictly_after=last_started)
    while fire is not None and fire <= now and len(slots) < limit:
        slots.append(fire)
        fire = trigger.next_after(fire, strictly_after=fire)
    return tuple(slots)
