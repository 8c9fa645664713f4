"""``review-scheduler outbox``: the messages waiting, sent and failed, per recipient."""

from __future__ import annotations

from scheduler.render import Registry, RenderOptions
from scheduler.render.common import json_document, shown
from scheduler.store import OutboxStatus
from scheduler.usecases.reminders import OutboxListing

OUTBOX_FORMATS: Registry[OutboxListing] = Registry("the outbox")


@OUTBOX_FORMATS.register("text", "one line per message, one per recipient under it")
def render_outbox_text(listing: OutboxListing, options: RenderOptions) -> list[str]:
    lines = []
    for row in listing.rows:
        lines.append(
            f"#{row.id} {row.status} {row.created_at.isoformat(timespec='seconds')} "
            f"attempts={row.attempts} {row.subject}"
        )
        for to in row.recipients:
            sent = to.status is OutboxStatus.SENT
            detail = "" if sent else " ".join(str(x) for x in (to.code, to.reply) if x)
            lines.append(f"    {to.address}: {to.status}{' ' + detail if detail else ''}")
    counts = listing.counts
    held = counts.get("unconfirmed", 0)
    lines.append(
        f"{counts['pending']} pending, {counts['failed']} failed, {counts['sent']} sent"
        + (f", {held} unconfirmed (perhaps delivered; see 'outbox retry')" if held else "")
        + "."
    )
    return ["\n".join(map(shown, lines)) + "\n"]


@OUTBOX_FORMATS.register("json", "one JSON object")
def render_outbox_json(listing: OutboxListing, options: RenderOptions) -> list[str]:
    document = {
        "counts": listing.counts,
        "messages": [
            {
                "id": row.id,
                "key": row.key,
                "status": row.status,
                "subject": row.subject,
                "created_at": row.created_at.isoformat(),
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at.isoformat(),
                "recipients": [
                    {"address": to.address, "status": to.status, "code": to.code, "reply": to.reply}
                    for to in row.recipients
                ],
            }
            for row in listing.rows
        ],
    }
    return [json_document(document)]
