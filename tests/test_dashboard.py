"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): its figures and
rows against the JSON report for the same --as-of, sorting and filtering, escaping, phone width,
and a screenshot kept as a test artifact; and the forecast's figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, sync_playwright

from scheduler.results import CheckResult, DocumentReport, State
from scheduler.review.overview import forecast, overview

from .conftest import frontmatter, write_doc

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AS_OF = "2026-11-27"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Debian's Chromium, with a fresh profile; Playwright never downloads a browser."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        yield context
        context.close()


def make_library(root: Path) -> None:
    """Documents in every state, for two editors and two sources, one with a hostile title."""
    docs = {
        "a/overdue-old.md": frontmatter(lastReviewed="2025-06-01", owner="ana@example.org"),
        "a/overdue.md": frontmatter(
            title=f"'{HOSTILE}'", lastReviewed="2026-05-01", owner="ana@example.org"
        ),
        "a/due-soon.md": frontmatter(lastReviewed="2026-09-10", owner="ana@example.org"),
        "b/ok-1.md": frontmatter(title="Ok one", lastReviewed="2026-10-01", source="NCI"),
        "b/ok-2.md": frontmatter(title="Ok two", lastReviewed="2026-11-20", source="NCI"),
        "b/yearly.md": frontmatter(
            title="Yearly", lastReviewed="2026-01-02", reviewFrequency="annually", source="NCI"
        ),
        "b/draft.md": frontmatter(title="Draft", status="draft"),
        "b/invalid.md": frontmatter(title="Broken", lastReviewed="2026-02-30"),
    }
    for name, text in docs.items():
        write_doc(root / "docs" / name, text)
    write_doc(
        root / "config" / "scheduler.toml",
        '[content]\nroot = "docs"\n'
        '[routing]\ndefault = ["team@example.org"]\n'
        '[links]\nedit_url = "https://git.example.org/docs/edit/main/{path}"\n',
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any) -> tuple[Path, dict[str, Any]]:
    """The dashboard and the JSON report of the same library on the same day."""
    make_library(tmp_path)
    monkeypatch.chdir(tmp_path)
    written = run("dashboard", "--out", "site", "--as-of", AS_OF)
    assert written.code == 0, written.err
    assert "8 documents, 2 calendar feeds" in written.err
    report = run("check", "--format", "json", "--as-of", AS_OF, "--fail-on", "never")
    return tmp_path / "site", json.loads(report.out)


def open_page(browser: BrowserContext, index: Path, width: int = 1280) -> Page:
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    dialogs: list[str] = []

    def dialog_opened(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dialog_opened)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    assert requests == [index.as_uri()]  # nothing else is fetched
    assert dialogs == []
    return page


def visible_rows(page: Page) -> list[list[str]]:
    cells: list[list[str]] = page.eval_on_selector_all(
        "#documents tbody tr:not([hidden])",
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))",
    )
    return cells


def test_figures_and_rows_match_the_json_report(
    browser: BrowserContext, site: tuple[Path, dict[str, Any]]
) -> None:
    folder, report = site
    page = open_page(browser, folder / "index.html")
    summary = report["summary"]
    for key, value in summary.items():
        assert page.text_content(f"#count-{key}") == str(value), key
    assert summary == {
        "documents": 8,
        "overdue": 2,
        "due_soon": 1,
        "ok": 3,
        "exempt": 1,
        "invalid": 1,
    }
    assert page.text_content("#on-time") == "67%"  # 4 of the 6 needing review are not overdue
    assert page.text_content("#oldest-overdue") == "2025-09-01"
    forecast_rows = dict(
        page.eval_on_selector_all(
            "#forecast tbody tr", "rows => rows.map(r => [r.dataset.key, r.cells[1].textContent])"
        )
    )
    assert forecast_rows["overdue"] == str(summary["overdue"])
    assert forecast_rows["2026-12"] == "1"  # the one due soon, 2026-12-10
    assert forecast_rows["2027-01"] == "2"  # 2027-01-01 and 2027-01-02
    assert forecast_rows["2027-02"] == "1"
    assert forecast_rows["later"] == "0"
    assert sum(int(v) for k, v in forecast_rows.items() if k != "overdue") == 4
    rows = visible_rows(page)
    expected = [
        [
            d["state"].replace("_", " "),
            d["due"] or "",
            str(d["days_until_due"] or "") if d["days_until_due"] is not None else "",
            d["path"],
        ]
        for d in report["documents"]
    ]
    assert [[r[0].split(" ", 1)[1], r[1], r[2], r[5]] for r in rows] == expected
    editors = page.eval_on_selector_all(
        "#by-editor tbody tr",
        "rows => rows.map(r => [r.cells[0].textContent, r.cells[2].textContent])",
    )
    assert editors[0] == ["ana@example.org", "2"]  # most overdue first
    sources = page.eval_on_selector_all(
        "#by-source tbody tr",
        "rows => rows.map(r => [0, 2, 6].map(i => r.cells[i].textContent))",
    )
    assert sources == [["Example", "2", "5"], ["NCI", "0", "3"]]  # name, overdue, total
    links = page.eval_on_selector_all(
        "#by-editor a", "links => links.map(a => a.getAttribute('href'))"
    )
    assert links == ["calendars/ana@example.org.ics", "calendars/team@example.org.ics"]
    assert all((folder / link).is_file() for link in links)
    edit = page.get_attribute("#documents tbody tr:first-child a[href*='edit']", "href")
    assert edit is not None and edit.startswith("https://git.example.org/docs/edit/main/docs/")
    page.close()


def test_a_hostile_title_renders_as_text(
    browser: BrowserContext, site: tuple[Path, dict[str, Any]]
) -> None:
    folder, _ = site
    page = open_page(browser, folder / "index.html")
    assert page.locator("img").count() == 0
    titles = [row[3] for row in visible_rows(page)]
    assert HOSTILE in titles
    assert page.evaluate("typeof window.alert") == "function"  # nothing ran that replaced it
    page.close()


def test_the_table_sorts_and_filters(
    browser: BrowserContext, site: tuple[Path, dict[str, Any]]
) -> None:
    folder, report = site
    page = open_page(browser, folder / "index.html")
    page.click("#documents th[data-sort=days] button")
    days = [int(r[2]) for r in visible_rows(page) if r[2]]
    assert days == sorted(days) and len(days) == 7
    assert page.get_attribute("#documents th[data-sort=days]", "aria-sort") == "ascending"
    page.click("#documents th[data-sort=days] button")
    days = [int(r[2]) for r in visible_rows(page) if r[2]]
    assert days == sorted(days, reverse=True)
    page.click("#documents th[data-sort=title] button")
    titles = [r[3].lower() for r in visible_rows(page)]
    assert titles == sorted(titles)

    page.fill("#filter", "ana@")
    ana = [d["path"] for d in report["documents"] if "ana@example.org" in d["editors"]]
    assert sorted(r[5] for r in visible_rows(page)) == sorted(ana)
    assert page.text_content("#shown-count") == f"{len(ana)} of 8 documents shown"
    page.fill("#filter", "")
    page.select_option("#state-filter", "overdue")
    assert len(visible_rows(page)) == report["summary"]["overdue"]
    assert {r[0] for r in visible_rows(page)} == {"▲ overdue"}  # a mark and a word, not colour
    page.close()


def test_legible_at_phone_width_with_a_screenshot_kept(
    browser: BrowserContext, site: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, _ = site
    page = open_page(browser, folder / "index.html", width=390)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot = tmp_path / "dashboard-phone.png"  # kept with pytest's temporary folders
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    page.close()


def test_without_javascript_it_is_a_plain_table(site: tuple[Path, dict[str, Any]]) -> None:
    folder, report = site
    html = (folder / "index.html").read_text()
    assert html.count('<tr class="state-') == report["summary"]["documents"]
    assert '<div class="controls" id="controls" hidden>' in html  # the controls need the script
    for external in ("<script src", "<link", "@import", "url(", "//fonts", "cdn"):
        assert external not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def _doc(
    path: str, state: State, due: date | None, editors: tuple[str, ...] = ()
) -> DocumentReport:
    days = None if due is None else (due - date(2026, 11, 27)).days
    return DocumentReport(path, path, state, "active", None, None, due, days, editors, ())


def test_the_forecast_counts_months_from_this_one_and_puts_overdue_apart() -> None:
    docs = [
        _doc("a", State.OVERDUE, date(2026, 1, 1)),
        _doc("b", State.DUE_SOON, date(2026, 11, 30)),
        _doc("c", State.OK, date(2027, 10, 31)),
        _doc("d", State.OK, date(2027, 11, 1)),  # the thirteenth month: later
        _doc("e", State.INVALID, date(2026, 12, 1)),  # cannot be scheduled
        _doc("f", State.EXEMPT, date(2026, 12, 1)),
    ]
    bars, later = forecast(docs, date(2026, 11, 27))
    assert [(b.key, b.count) for b in bars if b.count] == [
        ("overdue", 1),
        ("2026-11", 1),
        ("2027-10", 1),
    ]
    assert len(bars) == 13 and bars[1].label == "Nov 2026" and bars[-1].key == "2027-10"
    assert later == 1


def test_breakdowns_list_the_most_overdue_first() -> None:
    docs = [
        _doc("a", State.OVERDUE, date(2026, 10, 1), ("x@example.org",)),
        _doc("b", State.OVERDUE, date(2026, 1, 1), ("y@example.org",)),
        _doc("c", State.OK, date(2027, 1, 1), ("z@example.org", "x@example.org")),
        _doc("d", State.OK, date(2027, 1, 1)),
    ]
    view = overview(CheckResult(date(2026, 11, 27), "UTC", 30, docs))
    assert [g.name for g in view.by_editor] == [
        "y@example.org",
        "x@example.org",
        "(nobody)",
        "z@example.org",
    ]
    assert view.by_editor[0].most_days_overdue == 330
    assert [g.name for g in view.by_source] == ["(no source)"]
    assert view.on_time == 0.5
    assert view.oldest_overdue is not None and view.oldest_overdue.path == "b"
