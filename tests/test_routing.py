from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from scheduler.config import RoutingRule, RoutingSettings
from scheduler.content.metadata import ValidatedDocument
from scheduler.content.metadata_model import Metadata
from scheduler.review.routing import Router

ROUTING = RoutingSettings(
    default=("editors@example.org",),
    aliases={"#nci": ("nci-a@example.org", "nci-b@example.org"), "#web-team": ("web@example.org",)},
    rules=(
        RoutingRule(name="NCI", match={"source": "NCI"}, editors=("#nci",)),
        RoutingRule(
            name="breast",
            match={"cancerTypes": ("breast", "ovarian")},
            editors=("breast@example.org",),
        ),
        RoutingRule(
            name="core+tag",
            match={"sourceType": "02_*", "tags": "cancer-type"},
            editors=("core@example.org",),
        ),
        RoutingRule(
            name="spanish pages",
            match={"language": "es*"},
            paths=("es/**",),
            editors=("es@example.org",),
        ),
        RoutingRule(name="news", paths=("news/**", "**/*-news.md"), editors=("#web-team",)),
    ),
)


def doc(
    rel: str = "pages/a.md", owner: tuple[str, ...] | None = None, **fields: Any
) -> ValidatedDocument:
    meta = Metadata(owner=owner) if owner else Metadata()
    return ValidatedDocument(rel, rel, meta, {"owner": 9}, (), fields)


ROUTER = Router(ROUTING, "owner")


@pytest.mark.parametrize(
    ("document", "editors"),
    [
        (doc(), ("editors@example.org",)),  # nothing matches: the default
        (doc(source="NCI"), ("nci-a@example.org", "nci-b@example.org")),
        (doc(source="nci"), ("nci-a@example.org", "nci-b@example.org")),  # case-insensitive
        (doc(source="NCI-2"), ("editors@example.org",)),  # exact unless a glob says otherwise
        (doc(cancerTypes=["lung", "Breast"]), ("breast@example.org",)),  # any list entry
        (doc(cancerTypes=["ovarian"]), ("breast@example.org",)),  # any of the rule's values
        (doc(sourceType="02_nci_core", tags=["cancer-type"]), ("core@example.org",)),
        (doc(sourceType="02_nci_core", tags=["news"]), ("editors@example.org",)),  # all must hold
        (doc("es/page.md", language="es-419"), ("es@example.org",)),
        (doc("pages/page.md", language="es-419"), ("editors@example.org",)),  # path must hold too
        (doc("news/2026/x.md"), ("web@example.org",)),
        (doc("deep/dir/site-news.md"), ("web@example.org",)),
        # several rules: editors combined in rule order, each address once
        (
            doc("news/x.md", source="NCI", cancerTypes=["breast"]),
            ("nci-a@example.org", "nci-b@example.org", "breast@example.org", "web@example.org"),
        ),
        # owner field first, aliases expanded, then matching rules
        (doc(owner=("owner@example.org",)), ("owner@example.org",)),
        (
            doc(owner=("#web-team", "NCI-A@example.org"), source="NCI"),
            ("web@example.org", "NCI-A@example.org", "nci-b@example.org"),
        ),
        (doc(lastReviewed=date(2026, 1, 1)), ("editors@example.org",)),
    ],
)
def test_routing(document: ValidatedDocument, editors: tuple[str, ...]) -> None:
    assert ROUTER.route(document) == (editors, ())


def test_dates_and_numbers_match_as_text() -> None:
    router = Router(
        RoutingSettings(
            rules=(
                RoutingRule(
                    match={"lastReviewed": "2026-*", "weight": "10"}, editors=("x@example.org",)
                ),
            )
        ),
        "owner",
    )
    assert router.route(doc(lastReviewed=date(2026, 1, 1), weight=10))[0] == ("x@example.org",)


def test_unknown_owner_is_a_warning_and_falls_back() -> None:
    editors, problems = ROUTER.route(doc(owner=("#nobody",)))
    assert editors == ("editors@example.org",)
    assert [(p.severity, p.line, p.field, p.message) for p in problems] == [
        ("warning", 9, "owner", "'#nobody' is neither an email address nor a known alias")
    ]


def test_unowned_document_routes_to_nobody() -> None:
    assert Router(RoutingSettings(), "owner").route(doc()) == ((), ())
