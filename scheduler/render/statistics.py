"""``--statistics``: a run's problems counted by rule, as text or JSON."""

from __future__ import annotations

from scheduler.render import Registry, RenderOptions
from scheduler.render.check import SCHEMA_VERSION
from scheduler.render.common import json_document, plural
from scheduler.results import Statistics

STATISTICS_FORMATS: Registry[Statistics] = Registry("the problem statistics")


def statistics_summary(result: Statistics) -> str:
    t = result.totals()
    return (
        f"{plural(t['problems'], 'problem')} ({plural(t['errors'], 'error')}, "
        f"{plural(t['warnings'], 'warning')}) in {plural(t['files'], 'file')}"
    )


@STATISTICS_FORMATS.register("text", "one line per rule: count, code, name, severity, files")
def render_statistics_text(result: Statistics, options: RenderOptions) -> list[str]:
    width = max((len(str(c.count)) for c in result.rules), default=1)
    name = max((len(c.rule) for c in result.rules), default=0)
    lines = [
        f"{c.count:>{width}}  {c.code}  {c.rule:<{name}}  {c.severity:<7}  "
        f"in {plural(c.files, 'file')}"
        for c in result.rules
    ]
    lines.append(statistics_summary(result))
    return ["\n".join(lines) + "\n"]


@STATISTICS_FORMATS.register("json", "machine-readable")
def render_statistics_json(result: Statistics, options: RenderOptions) -> list[str]:
    document = {
        "schema_version": SCHEMA_VERSION,
        "as_of": result.as_of.isoformat(),
        **({"timezone": result.timezone} if result.timezone is not None else {}),
        "summary": result.totals(),
        "statistics": [c.to_json() for c in result.rules],
    }
    return [json_document(document)]
