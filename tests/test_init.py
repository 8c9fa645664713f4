"""``review-scheduler init``: a starter config inferred from the pages, which loads and runs."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import load_settings

from .conftest import SEED, frontmatter, write_doc
from .test_example_configs import EXPECTED

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-27"

# corpus: (convention, lines of what was inferred, the pages the run reports as invalid)
INFERRED: dict[str, tuple[str, list[str], set[str]]] = {
    "docusaurus": (
        "Docusaurus",
        [
            "  last_update.date in 5 of 5 pages",
            "  review_frequency in 1 of 5 pages",
            "  review_by in 0 of 5 pages",
            "  content root: docs",
            '  default_frequency = "1 year" for pages that name none',
        ],
        {"docs/reference/errors.md"},
    ),
    "hugo": (
        "Hugo",
        [
            "  lastmod in 4 of 7 pages",
            "  review_frequency in 1 of 7 pages",
            "  review_by in 1 of 7 pages",
            "  content root: content",
            '  default_frequency = "1 year" for pages that name none',
        ],
        {"content/docs/vaccines.md"},
    ),
    "jekyll": (
        "Jekyll",
        [
            "  last_modified_at in 5 of 6 pages",
            "  review_frequency in 2 of 6 pages",
            "  review_by in 2 of 6 pages",
            "  content root: .",
            '  default_frequency = "1 year" for pages that name none',
        ],
        {"_docs/interpreters.md"},
    ),
    "govuk": (
        "GOV.UK tech-docs",
        [
            "  last_reviewed_on in 6 of 7 pages",
            "  review_in in 6 of 7 pages",
            "  review_by in 0 of 7 pages",
            "  content root: source/documentation",
        ],
        {"source/documentation/infrastructure/broken.html.md.erb"},
    ),
}


def _copy(name: str, tmp_path: Path) -> Path:
    site = tmp_path / name
    # The site as it is before anyone configured it: without the config some corpora ship.
    shutil.copytree(
        REPO / "tests" / "corpora" / name,
        site,
        ignore=shutil.ignore_patterns("review-scheduler.toml"),
        symlinks=True,
    )
    return site


def _check(run: Any, *extra: str) -> tuple[int, dict[str, str]]:
    result = run(
        "--config",
        "review-scheduler.toml",
        "--as-of",
        AS_OF,
        "--format",
        "json",
        *extra,
        prog="check-reviews",
    )
    assert result.code in (0, 1), result.err  # findings at most: never a config error or bug
    return result.code, {d["path"]: d["state"] for d in json.loads(result.out)["documents"]}


@pytest.mark.parametrize("name", sorted(INFERRED))
def test_init_infers_the_convention_and_its_config_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    site = _copy(name, tmp_path)
    monkeypatch.chdir(site)
    convention, lines, invalid = INFERRED[name]
    result = run("init")
    assert result.code == 0, result.err
    out = result.out.splitlines()
    assert f"Inferred: {convention}" in out
    start = out.index(f"Inferred: {convention}") + 1
    assert out[start : start + len(lines)] == lines
    assert out[-1] == ("Wrote review-scheduler.toml. Check it with: review-scheduler validate")
    written = (site / "review-scheduler.toml").read_text()
    assert written.startswith(
        "# review-scheduler configuration, written by `review-scheduler init`"
    )
    load_settings(site / "review-scheduler.toml")  # loads and validates

    code, states = _check(run)
    assert code == 1
    assert {path for path, state in states.items() if state == "invalid"} == invalid
    if name in EXPECTED:  # the same pages as the hand-written example takes in
        assert set(states) == set(EXPECTED[name])
    else:
        assert len(states) == 6


def test_init_on_the_seed_convention_keeps_its_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    write_doc(tmp_path / "library" / "b.md", frontmatter(reviewFrequency=None))
    shutil.copy(SEED, tmp_path / "library" / SEED.name)
    write_doc(tmp_path / "README.md", "# Not a page\n")
    monkeypatch.chdir(tmp_path)
    result = run("init")
    assert result.code == 0, result.err
    assert "Inferred: the seed convention" in result.out
    assert "  lastReviewed in 2 of 2 pages" in result.out
    assert "  reviewFrequency in 1 of 2 pages" in result.out
    config = tomllib.loads((tmp_path / "review-scheduler.toml").read_text())
    assert config["content"] == {
        "root": "library",
        "include": ["**/*.md", "**/*.txt"],
        "exclude": [],
    }
    assert config["metadata"]["required"] == [
        "title",
        "last_reviewed",
        "review_frequency",
        "status",
        "license",
    ]
    assert config["review"]["default_frequency"] == "1 year"
    _, states = _check(run)
    # b.md names no frequency: 2026-01-15 plus the default year is not due yet
    assert states == {"library/000_6b193bba7092f18d.txt": "overdue", "library/b.md": "ok"}


def test_init_recognises_pages_scheduled_by_a_next_review_date_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    write_doc(tmp_path / "docs" / "a.md", "---\ntitle: A\nreview_by: 2026-12-01\n---\n")
    write_doc(tmp_path / "docs" / "b.md", "---\ntitle: B\nreview_by: 2027-12-01\n---\n")
    monkeypatch.chdir(tmp_path)
    result = run("init")
    assert "Inferred: next-review dates (review_by)" in result.out
    assert "  review_by in 2 of 2 pages" in result.out
    _, states = _check(run)
    assert states == {"docs/a.md": "due_soon", "docs/b.md": "ok"}


def test_init_in_an_empty_folder_writes_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init")
    assert result.code == 0, result.err
    assert "Found 0 pages with frontmatter." in result.out
    assert "Inferred: no review dates found; starting from the seed convention" in result.out
    settings = load_settings(tmp_path / "review-scheduler.toml")
    assert settings.fields.key("last_reviewed") == "lastReviewed"
    assert str(settings.content.root) == "."


def test_init_never_overwrites_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    site = _copy("hugo", tmp_path)
    monkeypatch.chdir(site)
    (site / "review-scheduler.toml").write_text("# ours\n")
    result = run("init")
    assert (result.code, result.out) == (2, "")
    assert "review-scheduler.toml already exists; use --force to replace it" in result.err
    assert (site / "review-scheduler.toml").read_text() == "# ours\n"
    result = run("init", "--force")
    assert result.code == 0, result.err
    assert 'last_reviewed = "lastmod"' in (site / "review-scheduler.toml").read_text()


def test_init_dry_run_prints_the_config_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    site = _copy("jekyll", tmp_path)
    monkeypatch.chdir(site)
    result = run("init", "--dry-run")
    assert result.code == 0
    assert not (site / "review-scheduler.toml").exists()
    config = tomllib.loads(result.out)  # stdout is the config alone
    assert config["fields"]["last_reviewed"] == "last_modified_at"
    assert "_site/**" in config["content"]["exclude"]
    assert "vendor/**" in config["content"]["exclude"]
    assert "Inferred: Jekyll" in result.err


def test_init_writes_any_key_a_page_uses_as_valid_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    hostile = ['"quoted"', "back\\slash", "del\x7fete", "tab\there", "bell\x07", "ünï"]
    keys = "".join(f"{json.dumps(key)}: x\n" for key in hostile)
    write_doc(tmp_path / "docs" / "a.md", f"---\ntitle: A\nlastmod: 2026-01-01\n{keys}---\n")
    (tmp_path / "docs" / "b\udcff.md").write_bytes(b"---\ntitle: B\nlastmod: 2026-02-01\n---\n")
    monkeypatch.chdir(tmp_path)
    result = run("init")
    assert result.code == 0, result.err
    config = tomllib.loads((tmp_path / "review-scheduler.toml").read_text(encoding="utf-8"))
    assert sorted(config["metadata"]["extra_keys"]) == sorted(hostile)
    assert "  lastmod in 2 of 2 pages" in result.out
    _, states = _check(run)
    assert len(states) == 2


def test_init_force_leaves_a_folder_of_that_name_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    (tmp_path / "review-scheduler.toml").mkdir()
    monkeypatch.chdir(tmp_path)
    result = run("init", "--force")
    assert result.code == 2
    assert "review-scheduler.toml is not a file; it is left alone" in result.err
    assert (tmp_path / "review-scheduler.toml").is_dir()


def test_a_site_with_undated_pages_gets_the_declared_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    site = _copy("govuk", tmp_path)  # its README and index page declare no review date
    monkeypatch.chdir(site)
    assert run("init").code == 0
    written = (site / "review-scheduler.toml").read_text()
    assert 'scope = "declared"' in written
    result = run("--format", "json", "--as-of", "2026-06-01", prog="check-reviews")
    assert json.loads(result.out)["summary"]["unscheduled"] == 1


def test_a_site_whose_pages_all_declare_a_date_keeps_the_default_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    (site / "docs" / "a.md").write_text("---\ntitle: A\nlastReviewed: 2026-01-01\n---\nText\n")
    monkeypatch.chdir(site)
    assert run("init").code == 0
    assert "scope" not in (site / "review-scheduler.toml").read_text()
