"""The loop a user would write instead of review-scheduler: for each file, frontmatter.load(),
a pydantic model, then date maths with dateutil. Prints one JSON line per document."""

from __future__ import annotations

import json
import re
import sys
from datetime import date
from pathlib import Path

import frontmatter
from dateutil.relativedelta import relativedelta
from pydantic import BaseModel, ValidationError

NAMED = {
    "weekly": relativedelta(weeks=1),
    "monthly": relativedelta(months=1),
    "quarterly": relativedelta(months=3),
    "semiannually": relativedelta(months=6),
    "annually": relativedelta(years=1),
}
UNITS = {"day": "days", "week": "weeks", "month": "months", "year": "years"}
ISO = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?")


class Page(BaseModel):
    title: str
    lastReviewed: date
    reviewFrequency: str
    status: str
    license: str
    url: str | None = None
    source: str | None = None
    language: str | None = None
    tags: list[str] = []
    cancerTypes: list[str] = []


def interval(text: str) -> relativedelta:
    text = text.strip().lower().removeprefix("every ")
    if text in NAMED:
        return NAMED[text]
    if (iso := ISO.fullmatch(text.upper())) is not None:
        y, m, w, d = (int(g or 0) for g in iso.groups())
        return relativedelta(years=y, months=m, weeks=w, days=d)
    number, unit = text.split()
    amount: dict[str, int] = {UNITS[unit.rstrip("s")]: int(number)}
    return relativedelta(**amount)  # type: ignore[arg-type]


def main(root: str, as_of: str) -> None:
    today = date.fromisoformat(as_of)
    out = sys.stdout
    for path in sorted(Path(root).rglob("*.md")):
        post = frontmatter.load(path)
        try:
            page = Page.model_validate(post.metadata)
            due = page.lastReviewed + interval(page.reviewFrequency)
        except (ValidationError, ValueError, KeyError) as exc:
            out.write(json.dumps({"path": str(path), "error": str(exc)}) + "\n")
            continue
        days = (due - today).days
        state = "overdue" if days < 0 else "due_soon" if days <= 30 else "ok"
        record = {"path": str(path), "title": page.title, "due": due.isoformat(), "state": state}
        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
