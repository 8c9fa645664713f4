"""Facts survive their text form: fresh and cached documents give the same report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scheduler.config import Settings
from scheduler.content.facts import FactsDecoder, encode_facts, establish, route_text
from scheduler.content.loader import SourceFile, load_document
from scheduler.content.metadata import validate
from scheduler.rules import UNKNOWN_OWNER

from .conftest import SEED, frontmatter, write_doc


@pytest.mark.parametrize(
    "text",
    [
        SEED.read_text(encoding="utf-8"),
        frontmatter(),
        frontmatter(lastReviewed="2025-02-30", reviewFrequency="biannually", url=None),
        frontmatter(title="“Ünïcode” – 日本語 \\u0000", status="retired"),
        frontmatter(lastReviewed="2026-01-15 10:30", reviewFrequency="[1, 2]", owner="3"),
        "---\ntitle: [unclosed\n---\n",
        "",
    ],
)
def test_facts_decode_to_what_was_established(tmp_path: Path, text: str) -> None:
    path = write_doc(tmp_path / "doc.md", text)
    file = SourceFile(str(path), "shown/doc.md", "doc.md", path.stat().st_size, 0, 0)
    settings = Settings()
    loaded = load_document(file, 1 << 20)
    facts = establish(validate(loaded, settings.metadata, settings.fields), settings.fields)
    assert FactsDecoder().facts(encode_facts(facts), "shown/doc.md") == facts
    moved = FactsDecoder().facts(encode_facts(facts), "elsewhere.md")
    assert moved.problems == tuple(replace(p, path="elsewhere.md") for p in facts.problems)


def test_routes_decode_with_the_path_they_are_shown_under() -> None:
    decoder = FactsDecoder()
    editors = ("a@example.org", "b@example.org")
    plain = route_text(editors, ())
    assert decoder.route(plain, "x.md") == (editors, ())
    assert decoder.route(plain, "y.md")[0] is decoder.route(plain, "x.md")[0]  # shared
    problem = UNKNOWN_OWNER(
        "x.md", 4, "owner", "'bob' is neither an email address nor a known alias"
    )
    text = route_text(editors, (problem,))
    assert decoder.route(text, "x.md") == (editors, (problem,))
    assert decoder.route(text, "z.md") == (editors, (replace(problem, path="z.md"),))
