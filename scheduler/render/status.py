"""``review-scheduler status``: the service's health, as lines or one JSON object."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from scheduler.render import Registry, RenderOptions
from scheduler.render.common import json_document, shown
from scheduler.usecases.reminders import Status

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
        + (next_cycle.isoformat(sep=" ", timespec="minutes") if next_cycle else "never")
        + f" {status.timezone} (schedule {status.schedule!r})"
    )
    counts = status.outbox
    lines.append(
        f"Outbox: {counts['pending']} pending, {counts['failed']} failed, {counts['sent']} sent"
        + (f", {status.unconfirmed} unconfirmed" if status.unconfirmed else "")
    )
    if status.delivery_problem is not None and status.delivery_problem_since is not None:
        since = status.delivery_problem_since.astimezone(ZoneInfo(status.timezone))
        lines.append(
            f"Delivery: failing since {since.isoformat(sep=' ', timespec='seconds')} "
            f"{status.timezone}: {status.delivery_problem}"
        )
    if not status.daemon_running:
        lines.append("Daemon: not running")
    else:
        pid = f" (pid {status.daemon_pid})" if status.daemon_pid else ""
        lines.append(f"Daemon: running{pid}")
    return ["\n".join(map(shown, lines)) + "\n"]


@STATUS_FORMATS.register("json", "one JSON object")
def render_status_json(status: Status, options: RenderOptions) -> list[str]:
    last = status.last
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
        "unconfirmed": status.unconfirmed,
        "delivery_problem": None
        if status.delivery_problem is None or status.delivery_problem_since is None
        else {
            "cause": status.delivery_problem,
            "since": status.delivery_problem_since.isoformat(),
        },
    }
    return [json_document(document)]
