"""Facts survive their text form: fresh and cached documents give the same report."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import Settings
from scheduler.content.facts import (
    DocumentFacts,
    FactsDecoder,
    MalformedRecord,
    encode_facts,
    establish,
    route_text,
)
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


PROBLEM = UNKNOWN_OWNER("x.md", 4, "owner", "'bob' is neither an email address nor a known alias")
RECORD = json.loads(
    encode_facts(DocumentFacts(title="t", last_reviewed=date(2026, 1, 15), problems=(PROBLEM,)))
)
PROBLEM_ROW = RECORD[7][0]


def record_with(index: int, value: Any) -> str:
    return json.dumps([*RECORD[:index], value, *RECORD[index + 1 :]])


def problem_with(index: int, value: Any) -> str:
    return record_with(7, [[*PROBLEM_ROW[:index], value, *PROBLEM_ROW[index + 1 :]]])


@pytest.mark.parametrize(
    "record",
    [
        "",
        " ",
        "[",
        "null",
        '"text"',
        "{}",
        json.dumps(RECORD) + " ",
        json.dumps(RECORD) + "[]",
        json.dumps(RECORD[:-1]),
        json.dumps([*RECORD, 0]),
        "[" * 100_000 + "]" * 100_000,
        record_with(0, 5),
        record_with(1, ["active"]),
        record_with(2, "2026-02-30"),
        record_with(2, "yesterday"),
        record_with(2, 20260115),
        record_with(4, {}),
        record_with(5, "3"),
        record_with(5, True),
        record_with(6, 1.5),
        record_with(7, "no problems"),
        record_with(7, [None]),
        record_with(7, [PROBLEM_ROW[:-1]]),
        record_with(8, []),
        record_with(8, [["language", "en"]]),
        problem_with(0, "4"),
        problem_with(1, 5),
        problem_with(2, "fatal"),
        problem_with(2, None),
        problem_with(3, None),
        problem_with(4, ["hint"]),
        problem_with(5, "RS999"),
        problem_with(5, ["RS301"]),
        problem_with(6, 0.5),
    ],
)
def test_what_the_encoder_never_writes_is_refused(record: str) -> None:
    decoder = FactsDecoder()
    assert decoder.facts(json.dumps(RECORD), "x.md") == DocumentFacts(
        title="t", last_reviewed=date(2026, 1, 15), problems=(PROBLEM,)
    )
    with pytest.raises(MalformedRecord):
        decoder.facts(record, "x.md")
    assert decoder.facts(json.dumps(RECORD), "x.md").problems == (PROBLEM,)  # still decodes


@pytest.mark.parametrize(
    "route",
    [
        "",
        "[[],[]",
        '[["a@example.org"]]',
        '[["a@example.org"],[],[]]',
        '[["a@example.org"],[]]x',
        '["a@example.org",[]]',
        "[[1],[]]",
        "[[null],[]]",
        '[["a@example.org"],0]',
        '[["a@example.org"],[[4,"owner"]]]',
        json.dumps([["a@example.org"], [[*PROBLEM_ROW[:2], "fatal", *PROBLEM_ROW[3:]]]]),
    ],
)
def test_routes_the_encoder_never_writes_are_refused(route: str) -> None:
    with pytest.raises(MalformedRecord):
        FactsDecoder().route(route, "x.md")
