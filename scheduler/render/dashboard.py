"""The freshness dashboard: one self-contained HTML page (inline styles, an inline script, an
inline SVG chart; nothing fetched), rendered with Jinja2 from ``templates/dashboard.html`` with
autoescaping, so that every text from documents is shown as text."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import jinja2

from scheduler.notify.digest import builtin_templates
from scheduler.results import SCHEDULED, CheckResult, DocumentReport, State
from scheduler.review.overview import NOBODY, Overview, overview
from scheduler.text import http_url, shown

_MARKS = {
    State.INVALID: "✖",
    State.OVERDUE: "▲",
    State.DUE_SOON: "●",
    State.OK: "✓",
    State.EXEMPT: "–",
}


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(builtin_templates())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("dashboard.html")


def _row(doc: DocumentReport) -> dict[str, Any]:
    return {
        "state": doc.state.value,
        "label": doc.state.label,
        "mark": _MARKS[doc.state],
        "rank": doc.urgency[0],
        "due": doc.due.isoformat() if doc.due else "",
        "days": "" if doc.days_until_due is None else doc.days_until_due,
        "title": shown(doc.title or "(no title)"),
        "url": http_url(doc.url),
        "edit": dict(doc.links).get("edit_url"),  # from [links] edit_url
        "path": shown(doc.path),
        "editors": shown(", ".join(doc.editors) or NOBODY),
        "problems": [shown(p.describe()) for p in doc.problems],
    }


def _chart(view: Overview) -> dict[str, Any]:
    """The forecast's bars as SVG geometry."""
    top = max((bar.count for bar in view.forecast), default=0) or 1
    width, height, gap = 40, 160, 8
    bars = []
    for i, bar in enumerate(view.forecast):
        h = round(height * bar.count / top)
        bars.append(
            {
                "bar": bar,
                "x": 40 + i * (width + gap),
                "y": 20 + height - h,
                "height": h,
                "width": width,
            }
        )
    return {"bars": bars, "width": 40 + len(bars) * (width + gap), "height": height + 70}


def render_dashboard(result: CheckResult, feeds: Mapping[str, str]) -> str:
    """The dashboard page for ``result``; ``feeds`` maps editors to their calendar feeds'
    relative links."""
    view = overview(result)
    oldest = view.oldest_overdue
    return _template().render(
        as_of=result.as_of.isoformat(),
        timezone=shown(result.timezone),
        due_soon_days=result.due_soon_days,
        view=view,
        states=[(s.value, s.label, _MARKS[s]) for s in SCHEDULED],
        on_time=None if view.on_time is None else f"{view.on_time:.0%}",
        oldest=None if oldest is None else _row(oldest),
        chart=_chart(view),
        rows=[_row(doc) for doc in result.documents],
        feeds_by=feeds,
        shown=shown,
    )
