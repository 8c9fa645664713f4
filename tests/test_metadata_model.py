"""The metadata model bound to a set of parsing rules (what validation uses) must accept, build
and refuse exactly what the model reading its rules from the validation context does, the
first time it meets a value and every time after (it remembers what it made of values)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scheduler.config import MetadataRules
from scheduler.content.cadence import Cadence
from scheduler.content.fields import FIELDS, NAMES
from scheduler.content.metadata import ParsingRules
from scheduler.content.metadata_model import _MEMO_MAX, Metadata, model_for

_RULES = MetadataRules()
PARSING = ParsingRules(_RULES.statuses, _RULES.licenses, ZoneInfo("America/New_York"))
OTHER = ParsingRules(("live", "gone"), ("MIT",), UTC)


def _outcome(model: Any, data: dict[str, Any], rules: ParsingRules) -> str:
    """What validating ``data`` gives, written out with every value's type."""
    try:
        if model is Metadata:
            made = model.model_validate(data, context={"rules": rules})
        else:
            made = model.model_validate(data)
    except ValidationError as exc:
        return repr([(e["type"], e["loc"], e["msg"], e.get("ctx")) for e in exc.errors()])
    return repr([(name, made.value(name)) for name in NAMES])


VALUES = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    float("nan"),
    "",
    " ",
    "x",
    "  padded  ",
    "active",
    "ACTIVE",
    "Draft",
    "actve",
    "live",
    "CC-BY-4.0",
    "cc-by-4.0",
    "MIT",
    "quarterly",
    "90 days",
    "P1Y6M",
    "biannually",
    "every 2 years",
    "٣ months",
    "2024-12-01",
    "2025-02-30",
    "2024-12-01T23:30:00-05:00",
    "2024-12-01 10:00",
    "２０２４-01-01",
    "en",
    "pt-BR",
    "en_US",
    "https://www.example.org/p",
    "HTTP://EXAMPLE.ORG",
    "ftp://x",
    "https://",
    "https://x y",
    "a@example.org",
    date(2024, 12, 1),
    datetime(2024, 12, 1, 23, 30, tzinfo=UTC),
    datetime(2024, 12, 2, 4, 30, tzinfo=timezone(timedelta(hours=5))),
    datetime(2024, 12, 1, 23, 30),
    datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    [],
    ["a", "b"],
    ["a", ""],
    ["a", 1],
    [1],
    [True],
    ["a", ["b"]],
    ("a",),
    {"a": "mapping"},
    b"bytes",
]


@pytest.mark.parametrize("rules", [PARSING, OTHER], ids=["defaults", "other"])
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_each_field_reads_every_value_as_the_context_model_does(
    field: Any, rules: ParsingRules
) -> None:
    bound = model_for(rules)
    for value in VALUES:
        data = {field.name: value}
        expected = _outcome(Metadata, data, rules)
        assert _outcome(bound, data, rules) == expected, value
        assert _outcome(bound, data, rules) == expected, value  # remembered: the same again


def test_one_model_per_set_of_rules() -> None:
    assert model_for(PARSING) is model_for(PARSING)
    assert model_for(PARSING) is not model_for(OTHER)
    assert tuple(model_for(PARSING).model_fields) == NAMES


def test_values_equal_across_types_are_told_apart() -> None:
    bound = model_for(PARSING)
    for first, second in [(1, True), (True, 1), (1, 1.0), (["1"], [1]), ([1], ["1"])]:
        for value in (first, second):
            assert _outcome(bound, {"tags": value}, PARSING) == _outcome(
                Metadata, {"tags": value}, PARSING
            )
            assert _outcome(bound, {"version": value}, PARSING) == _outcome(
                Metadata, {"version": value}, PARSING
            )


def test_remembered_values_stay_within_bounds() -> None:
    bound = model_for(OTHER)
    for index in range(_MEMO_MAX + 50):
        assert bound.model_validate({"title": f"Title {index}"}).value("title") == f"Title {index}"
    check = bound.__pydantic_validator__  # still validates after starting again
    assert check is not None
    assert bound.model_validate({"review_frequency": "90 days"}).value(
        "review_frequency"
    ) == Cadence(days=90)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(VALUES[7:40]),
    st.text(max_size=12),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-9))])),
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(
        st.sampled_from(NAMES), _SCALARS | st.lists(_SCALARS, max_size=3), max_size=6
    )
)
def test_generated_metadata_reads_as_the_context_model_does(data: dict[str, Any]) -> None:
    bound = model_for(PARSING)
    expected = _outcome(Metadata, data, PARSING)
    assert _outcome(bound, data, PARSING) == expected
    assert _outcome(bound, data, PARSING) == expected
