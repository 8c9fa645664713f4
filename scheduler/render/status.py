"""``review-scheduler status``: the service's health, as lines or one JSON object."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from scheduler.render import Registry, RenderOptions
from scheduler.render.common import json_document, shown
from scheduler.runtime.health import Status

STATUS_FORMATS: Registry[Status] = Registry("the status")


@STATUS_FORMATS.register("text", "human-readable lines")
def render_status_text(status: Status, options: RenderOptions) -> list[str]:
    lines = []
    last, outcome = status.last, status.outcome
    if last is None:
        lines.append("Last cycle: none recorded")
    else:
        when = last.started_at.astimezone(ZoneInfo(status.timezone)).isoformat(
            sep=" ", timespec="seconds"
        )
        detail = last.detail
        if outcome == "ok":
            numbers = (
                f"{detail.get('documents', 0)} documents, {detail.get('outstanding', 0)} "
                f"outstanding, {detail.get('queued', 0)} digests queued, "
                f"{detail.get('delivered', 0)} delivered, {detail.get('retrying', 0)} "
                f"waiting for a retry, {detail.get('failed', 0)} failed"
            )
        else:
            numbers = str(detail.get("error", "")) or "no counts"
        lines.append(f"Last cycle: {when} {status.timezone}: {outcome}: {numbers}")
    next_cycle = status.next_cycle
    lines.append(
        "Next cycle: "
        + (next_cycle.isoformat(sep=" ", timespec=_timespec(status)) if next_cycle else "never")
        + f" {status.timezone} (schedule {status.schedule!r})"
    )
    counts = status.outbox
    order = ["pending", "failed", "sent"]
    order += [state for state in counts if state not in order]  # e.g. unconfirmed
    lines.append("Outbox: " + ", ".join(f"{counts.get(state, 0)} {state}" for state in order))
    if not status.daemon_running:
        lines.append("Daemon: not running")
    else:
        pid = f" (pid {status.daemon_pid})" if status.daemon_pid else ""
        lines.append(f"Daemon: running{pid}")
    if status.store_error is not None:
        lines.append(f"State store: unreadable: {status.store_error}")
    if status.healthy:
        lines.append("Health: healthy")
    else:
        lines.append("Health: unhealthy")
        lines.extend(f"  {finding.code}: {finding.reason}" for finding in status.findings)
    if status.shared:
        lease = status.cycle_lease
        lines.append(f"Cycle lease: {lease.holder if lease else 'held by nobody'}")
        lines.append(f"Replicas seen recently: {len(status.replicas)}")
        for replica in status.replicas:
            seen = replica.seen_at.astimezone(ZoneInfo(status.timezone)).isoformat(
                sep=" ", timespec="seconds"
            )
            role = " (holds the cycle lease)" if lease and lease.holder == replica.id else ""
            lines.append(f"  {replica.id}: last seen {seen}{role}")
    return ["\n".join(map(shown, lines)) + "\n"]


def _timespec(status: Status) -> str:
    """Seconds for a schedule with a seconds field, else minutes."""
    return "seconds" if len(status.schedule.split()) == 6 else "minutes"


@STATUS_FORMATS.register("json", "one JSON object")
def render_status_json(status: Status, options: RenderOptions) -> list[str]:
    last, failing = status.last, status.failing
    document = {
        "healthy": status.healthy,
        "daemon": {"running": status.daemon_running, "pid": status.daemon_pid},
        "last_cycle": None
        if last is None
        else {
            "started_at": last.started_at.isoformat(),
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
            "as_of": last.as_of.isoformat() if last.as_of else None,
            "outcome": status.outcome,
            "counts": last.detail,
        },
        "next_cycle": status.next_cycle.isoformat() if status.next_cycle else None,
        "schedule": status.schedule,
        "timezone": status.timezone,
        "outbox": status.outbox,
        "missed_cycles": [moment.isoformat() for moment in status.missed],
        "delivery_failing": None
        if failing is None
        else {
            "since": failing.since.isoformat(),
            "messages": failing.messages,
            "last_code": failing.last_code,
            "last_reply": failing.last_reply,
        },
        "store_error": status.store_error,
        "findings": [{"code": f.code, "reason": f.reason} for f in status.findings],
    }
    if status.shared:
        lease = status.cycle_lease
        document["cycle_lease"] = (
            None
            if lease is None
            else {
                "holder": lease.holder,
                "acquired_at": lease.acquired_at.isoformat(),
                "until": lease.until.isoformat(),
            }
        )
        document["replicas"] = [
            {
                "id": r.id,
                "host": r.host,
                "pid": r.pid,
                "started_at": r.started_at.isoformat(),
                "seen_at": r.seen_at.isoformat(),
                "holds_cycle_lease": lease is not None and lease.holder == r.id,
            }
            for r in status.replicas
        ]
    return [json_document(document)]
