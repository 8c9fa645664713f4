"""A router remembers whether a rule's keys matched, by their values: a router that has seen
many documents must route each one as a router seeing it first does."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.review import routing
from scheduler.review.routing import Router

from .test_routing import ROUTING, doc

_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["NCI", "nci", "NCI-2", "02_nci_core", "es", "es-419", "breast", "true", "1"]),
    st.sampled_from([True, False, 1, 1.0, date(2024, 1, 1)]),
    st.lists(st.sampled_from(["lung", "Breast", "ovarian", "cancer-type", "news", 1, True])),
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(("source", "cancerTypes", "sourceType", "tags", "language"), _VALUES),
)
_PATHS = st.sampled_from(["pages/a.md", "es/page.md", "news/x.md", "a/b-news.md"])
SEASONED = Router(ROUTING, "owner")


@settings(max_examples=500, deadline=None)
@given(fields=_FIELDS, rel=_PATHS)
def test_a_router_that_remembers_routes_as_a_fresh_one(fields: dict[str, Any], rel: str) -> None:
    document = doc(rel, **fields)
    assert SEASONED.route(document) == Router(ROUTING, "owner").route(document)


def test_what_is_remembered_stays_within_bounds() -> None:
    router = Router(ROUTING, "owner")
    for index in range(routing._MATCHES_KEPT + 20):
        router.route(doc(source=f"S{index}"))
    assert all(len(rule._matched) <= routing._MATCHES_KEPT for rule in router._rules)
    assert router.route(doc(source="NCI"))[0] == ("nci-a@example.org", "nci-b@example.org")
