"""Recording reviews, snoozes and the history, end to end through the commands."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import SEED, frontmatter, write_doc

TODAY = "2026-11-27"


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(
        tmp_path / "config" / "scheduler.toml",
        '[content]\nroot = "docs"\n[routing]\ndefault = ["team@example.org"]\n'
        '[store]\nurl = "sqlite:///state/state.sqlite3"\n',
    )
    write_doc(tmp_path / "docs" / "a.md", frontmatter(lastReviewed="2026-01-15"))
    write_doc(tmp_path / "docs" / "b.md", frontmatter(lastReviewed="'2026-02-01'"))
    (tmp_path / "docs" / "seed.txt").write_bytes(SEED.read_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def history(run: Any, *args: str) -> Any:
    result = run("history", "--format", "json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_mark_reviewed_changes_the_date_only_and_logs_the_review(library: Path, run: Any) -> None:
    before = (library / "docs" / "seed.txt").read_bytes()
    result = run(
        "mark-reviewed",
        "docs/seed.txt",
        "--as-of",
        TODAY,
        "--by",
        "ed@example.org",
        "--outcome",
        "minor",
        "--note",
        "updated trial links",
    )
    assert (result.code, result.err) == (0, "")
    assert result.out == "docs/seed.txt: last reviewed 2025-12-30 -> 2026-11-27\n"
    after = (library / "docs" / "seed.txt").read_bytes()
    assert after == before.replace(b"'2025-12-30'", b"'2026-11-27'")
    [document] = history(run)["documents"]
    [entry] = document["entries"]
    assert document["path"] == "docs/seed.txt"
    assert {k: v for k, v in entry.items() if k != "at"} == {
        "path": "docs/seed.txt",
        "kind": "reviewed",
        "editor": "ed@example.org",
        "old_date": "2025-12-30",
        "new_date": "2026-11-27",
        "until": None,
        "outcome": "minor",
        "note": "updated trial links",
        "content_changed": None,  # no run had seen the document before
    }
    check = run("--as-of", TODAY, "--format", "json", "docs/seed.txt", prog="check-reviews")
    assert json.loads(check.out)["documents"][0]["state"] == "ok"


def test_dry_run_prints_a_diff_and_writes_nothing(library: Path, run: Any) -> None:
    before = (library / "docs" / "a.md").read_bytes()
    result = run("mark-reviewed", "docs/a.md", "--as-of", TODAY, "--dry-run")
    assert result.code == 0
    assert result.out == (
        "--- a/docs/a.md\n+++ b/docs/a.md\n@@ -1,6 +1,6 @@\n ---\n title: Example page\n"
        "-lastReviewed: 2026-01-15\n+lastReviewed: 2026-11-27\n reviewFrequency: quarterly\n"
        " status: active\n license: CC-BY-4.0\n"
    )
    assert (library / "docs" / "a.md").read_bytes() == before
    assert not (library / "state").exists()  # nothing logged either


def test_many_files_and_globs_refusals_change_the_others(library: Path, run: Any) -> None:
    outside = write_doc(library / "elsewhere" / "c.md", frontmatter())
    (library / "docs" / "link.md").symlink_to(outside)
    write_doc(library / "docs" / "broken.md", "---\ntitle: [unclosed\n---\n")
    write_doc(library / "docs" / "later.md", frontmatter(lastReviewed="2026-11-20"))
    result = run(
        "mark-reviewed", "docs/*.md", "docs/missing.md", "--as-of", TODAY, "--date", "2026-11-01"
    )
    assert result.code == 1
    assert result.out == (
        "docs/a.md: last reviewed 2026-01-15 -> 2026-11-01\n"
        "docs/b.md: last reviewed 2026-02-01 -> 2026-11-01\n"
    )
    assert result.err == (
        "docs/link.md: not changed: is outside the content root docs through a symbolic link;"
        " it is not changed\n"
        "docs/missing.md: not changed: no such file\n"
        "docs/broken.md: not changed: its frontmatter cannot be read safely: YAML syntax error:"
        " did not find expected ',' or ']'\n"
        "docs/later.md: not changed: was last reviewed on 2026-11-20, after 2026-11-01; use"
        " --force to record an earlier date\n"
    )
    assert outside.read_text() == frontmatter()
    assert "lastReviewed: '2026-11-01'" in (library / "docs" / "b.md").read_text()
    forced = run(
        "mark-reviewed", "docs/later.md", "--as-of", TODAY, "--date", "2026-11-01", "--force"
    )
    assert forced.code == 0
    assert "lastReviewed: 2026-11-01\n" in (library / "docs" / "later.md").read_text()


def test_a_future_date_is_a_usage_error_and_changes_nothing(library: Path, run: Any) -> None:
    before = (library / "docs" / "a.md").read_bytes()
    result = run("mark-reviewed", "docs/a.md", "--as-of", TODAY, "--date", "2026-11-28")
    assert result.code == 2
    assert (
        result.err == "review-scheduler: error: 2026-11-28 is in the future (today is 2026-11-27)\n"
    )
    assert (library / "docs" / "a.md").read_bytes() == before


def test_commit_commits_only_the_reviewed_documents(library: Path, run: Any) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],  # noqa: S607 (git from PATH, as a user runs it)
            cwd=library,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    git("init", "--quiet")
    git("config", "user.name", "Test")
    git("config", "user.email", "test@example.org")
    git("add", "docs")
    git("commit", "--quiet", "-m", "start")
    (library / "docs" / "b.md").write_text(frontmatter(title="Unrelated edit"))
    result = run(
        "mark-reviewed", "docs/a.md", "--as-of", TODAY, "--by", "ed@example.org", "--commit"
    )
    assert result.code == 0, result.err
    assert git("log", "-1", "--format=%s") == (
        "Reviewed docs/a.md by ed@example.org: no outcome recorded\n"
    )
    assert git("show", "--name-only", "--format=", "HEAD") == "docs/a.md\n"
    assert git("status", "--porcelain", "docs") == " M docs/b.md\n"  # left uncommitted


def test_commit_outside_a_git_working_tree_changes_nothing(library: Path, run: Any) -> None:
    before = (library / "docs" / "a.md").read_bytes()
    result = run("mark-reviewed", "docs/a.md", "--as-of", TODAY, "--commit")
    assert result.code == 2
    assert result.err.startswith("review-scheduler: error: --commit needs a git working tree: ")
    assert (library / "docs" / "a.md").read_bytes() == before


def test_a_commit_git_refuses_is_reported_after_the_review_is_recorded(
    library: Path, run: Any
) -> None:
    for args in (
        ["init", "--quiet"],
        ["config", "user.name", "T"],
        ["config", "user.email", "t@x"],
    ):
        subprocess.run(["git", *args], cwd=library, check=True)  # noqa: S607
    hook = library / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'reviews need a ticket' >&2\nexit 1\n")
    hook.chmod(0o755)
    result = run("mark-reviewed", "docs/a.md", "--as-of", TODAY, "--commit")
    assert result.code == 1
    assert result.err == (
        "review-scheduler: error: the documents were changed and their reviews recorded, but"
        " not committed: git commit: reviews need a ticket\n"
    )
    assert "lastReviewed: 2026-11-27" in (library / "docs" / "a.md").read_text()
    assert [d["path"] for d in history(run)["documents"]] == ["docs/a.md"]


def test_snooze_list_cancel_and_their_history(library: Path, run: Any) -> None:
    snoozed = run(
        "snooze", "docs/a.md", "--as-of", TODAY, "--until", "2026-12-15", "--reason",
        "awaiting new guidance", "--by", "ed@example.org",
    )  # fmt: skip
    assert (snoozed.code, snoozed.out) == (0, "docs/a.md: snoozed until 2026-12-15\n")
    listed = run("snooze", "--list", "--as-of", TODAY)
    assert listed.out == (
        "docs/a.md: snoozed until 2026-12-15 by ed@example.org: awaiting new guidance\n"
    )
    assert run("snooze", "--list", "--as-of", "2026-12-15").out == "No documents are snoozed.\n"
    cancelled = run("snooze", "docs/a.md", "docs/b.md", "--cancel", "--by", "boss@example.org")
    assert cancelled.code == 1
    assert cancelled.out == "docs/a.md: snooze cancelled\n"
    assert cancelled.err == "docs/b.md: not changed: is not snoozed\n"
    kinds = [
        (e["kind"], e["until"], e["note"], e["editor"])
        for e in history(run)["documents"][0]["entries"]
    ]
    assert kinds == [
        ("snoozed", "2026-12-15", "awaiting new guidance", "ed@example.org"),
        ("snooze-cancelled", None, None, "boss@example.org"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--until", "2027-02-26", "--reason", "x"], "more than 90 days ahead"),
        (["--until", "2026-11-27", "--reason", "x"], "is not after today"),
        (["--until", "2026-12-01", "--reason", "  "], "--reason must say why"),
        (["--until", "2026-12-01"], "snooze needs --until DATE and --reason TEXT"),
    ],
)
def test_snooze_limits(library: Path, run: Any, args: list[str], message: str) -> None:
    result = run("snooze", "docs/a.md", "--as-of", TODAY, *args)
    assert result.code == 2
    assert message in result.err


def test_max_snooze_days_is_a_setting(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_REMINDERS__MAX_SNOOZE_DAYS", "120")
    result = run("snooze", "docs/a.md", "--as-of", TODAY, "--until", "2027-02-26", "--reason", "x")
    assert result.code == 0, result.err


def test_history_in_every_format(library: Path, run: Any) -> None:
    run("mark-reviewed", "docs/b.md", "--as-of", TODAY, "--outcome", "no-change", "--note", "=1+1")
    run("mark-reviewed", "docs/a.md", "--as-of", TODAY, "--by", "ed@example.org")
    run("snooze", "docs/seed.txt", "--as-of", TODAY, "--until", "2026-12-01", "--reason", "audit")

    text = run("history").out
    lines = [
        line.split("  ", 2)[-1] if line.startswith("  ") else line for line in text.splitlines()
    ]
    assert lines == [
        "docs/a.md",
        "reviewed by ed@example.org: last reviewed 2026-01-15 -> 2026-11-27; outcome not recorded",
        "docs/b.md",
        "reviewed: last reviewed 2026-02-01 -> 2026-11-27; outcome no-change; note: =1+1",
        "docs/seed.txt",
        "snoozed until 2026-12-01: audit",
    ]
    csv_lines = run("history", "--format", "csv").out.splitlines()
    assert csv_lines[0] == (
        "path,at,kind,editor,old_date,new_date,until,outcome,note,content_changed"
    )
    assert [line.split(",")[2:] for line in csv_lines[1:]] == [
        ["reviewed", "ed@example.org", "2026-01-15", "2026-11-27", "", "", "", ""],
        ["reviewed", "", "2026-02-01", "2026-11-27", "", "no-change", "'=1+1", ""],
        ["snoozed", "", "", "", "2026-12-01", "", "audit", ""],
    ]
    one = history(run, "docs/b.md")["documents"]
    assert [d["path"] for d in one] == ["docs/b.md"]
    assert history(run, "--since", "2999-01-01") == {"schema_version": 1, "documents": []}
    assert run("history", "--since", "2999-01-01").out == (
        "No reviews, snoozes or reminders recorded.\n"
    )


def test_history_without_a_store_creates_none(library: Path, run: Any) -> None:
    assert history(run) == {"schema_version": 1, "documents": []}
    assert not (library / "state").exists()


def test_reports_mark_snoozed_documents_and_show_edit_links(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_LINKS__EDIT_URL", "https://git.example.org/edit/{path}")
    write_doc(library / "docs" / "a b.md", frontmatter(lastReviewed="2026-01-15"))
    run("snooze", "docs/a b.md", "--as-of", TODAY, "--until", "2026-12-01", "--reason", "audit")
    args = ("--as-of", TODAY, "--fail-on", "never", "docs/a b.md", "docs/b.md")
    text = run(*args, prog="check-reviews").out
    assert "(1 snoozed)" in text.splitlines()[0]
    assert "overdue, snoozed until 2026-12-01" in text
    assert "Review notes:\n  docs/a b.md: snoozed until 2026-12-01: audit\n" in text
    markdown = run(*args, "--format", "markdown", prog="check-reviews").out
    assert "| docs/a b.md ([edit](https://git.example.org/edit/docs/a%20b.md)) |" in markdown
    assert "- docs/a b.md: snoozed until 2026-12-01: audit" in markdown
    data = json.loads(run(*args, "--format", "json", prog="check-reviews").out)
    snoozed, plain = data["documents"]
    assert list(snoozed)[-2:] == ["edit_url", "snoozed"]
    assert snoozed["snoozed"] == {"until": "2026-12-01", "reason": "audit"}
    assert "snoozed" not in plain and plain["edit_url"].endswith("/docs/b.md")
    assert data["summary"]["snoozed"] == 1
    github = run(*args, "--format", "github", prog="check-reviews").out
    assert "editors: team@example.org; snoozed until 2026-12-01: audit\n" in github
    rows = list(
        csv.DictReader(io.StringIO(run(*args, "--format", "csv", prog="check-reviews").out))
    )
    assert [(r["path"], r["snoozed_until"], r["snooze_reason"]) for r in rows] == [
        ("docs/a b.md", "2026-12-01", "audit"),
        ("docs/b.md", "", ""),
    ]


@pytest.mark.parametrize(
    "value", ["ftp://x/{path}", "https://x/edit/main", "https://x/{path}/{branch}"]
)
def test_link_templates_are_checked(library: Path, run: Any, value: str) -> None:
    write_doc(library / "bad.toml", f'[links]\nedit_url = "{value}"\n')
    result = run("--config", "bad.toml", "--as-of", TODAY, prog="check-reviews")
    assert result.code == 2
    assert "bad.toml: [links] edit_url: " in result.err


def test_hand_edits_are_logged_and_rubber_stamps_flagged(library: Path, run: Any) -> None:
    for name in ("c.md", "d.md"):
        write_doc(library / "docs" / name, frontmatter(lastReviewed="2026-01-15"))
    assert run("send", "--as-of", "2026-05-01").code == 0  # every document is overdue: seen

    a = library / "docs" / "a.md"  # the date bumped by hand, nothing else
    a.write_text(a.read_text().replace("2026-01-15", "2026-05-02"))
    b = library / "docs" / "b.md"  # the date bumped by hand, and the page updated
    b.write_text(b.read_text().replace("'2026-02-01'", "'2026-05-02'") + "New advice.\n")
    stamp = ("mark-reviewed", "docs/c.md", "--as-of", "2026-05-02", "--by", "ed@example.org")
    assert run(*stamp).code == 0  # nothing changed, no outcome
    assert (
        run("mark-reviewed", "docs/d.md", "--as-of", "2026-05-02", "--outcome", "no-change").code
        == 0
    )
    assert run("send", "--as-of", "2026-05-02").code == 0  # sees the hand edits

    data = json.loads(
        run(
            "--as-of", "2026-05-02", "--format", "json", "--fail-on", "never", prog="check-reviews"
        ).out
    )
    flagged = {d["path"] for d in data["documents"] if d.get("rubber_stamped")}
    assert flagged == {"docs/a.md", "docs/c.md"}
    assert data["summary"]["rubber_stamped"] == 2
    text = run("--as-of", "2026-05-02", "--fail-on", "never", prog="check-reviews").out
    assert "(2 rubber-stamped)" in text.splitlines()[0]
    github = run(
        "--as-of", "2026-05-02", "--format", "github", "--fail-on", "never", prog="check-reviews"
    ).out
    assert (
        "::warning file=docs/c.md,line=3,title=Rubber-stamped review::the last-reviewed date"
        " moved to 2026-05-02 with nothing else changed and no outcome recorded\n" in github
    )
    assert (
        "  docs/a.md: rubber-stamped: the last-reviewed date moved to 2026-05-02 with nothing"
        " else changed and no outcome recorded\n" in text
    )
    entries = {
        d["path"]: [
            (e["kind"], e["content_changed"]) for e in d["entries"] if e["kind"] != "reminded"
        ]
        for d in history(run)["documents"]
    }
    assert entries == {
        "docs/a.md": [("edited-outside", False)],
        "docs/b.md": [("edited-outside", True)],
        "docs/c.md": [("reviewed", False)],
        "docs/d.md": [("reviewed", False)],  # unchanged too, but an outcome was recorded
        "docs/seed.txt": [],
    }
    lines = run("history", "docs/a.md").out.splitlines()
    assert lines[-1].endswith(
        "last reviewed 2026-01-15 -> 2026-05-02, edited outside the tool; nothing else changed"
    )

    # a real review later clears the flag
    a.write_text(a.read_text() + "Checked against the 2026 guideline.\n")
    assert run("mark-reviewed", "docs/a.md", "--as-of", "2026-05-03").code == 0
    again = json.loads(
        run(
            "--as-of", "2026-05-03", "--format", "json", "--fail-on", "never", prog="check-reviews"
        ).out
    )
    assert {d["path"] for d in again["documents"] if d.get("rubber_stamped")} == {"docs/c.md"}


def test_folders_named_are_refused_and_folders_a_glob_matches_are_skipped(
    library: Path, run: Any
) -> None:
    write_doc(library / "docs" / "sub" / "c.md", frontmatter())
    result = run("mark-reviewed", "docs/*", "docs/sub", "--as-of", TODAY)
    assert result.code == 1
    assert result.err == (
        "docs/sub: not changed: is a folder: name documents, or a glob such as 'folder/**/*.md'\n"
    )
    assert [line.split(":")[0] for line in result.out.splitlines()] == [
        "docs/a.md",
        "docs/b.md",
        "docs/seed.txt",
    ]
    recursive = run("mark-reviewed", "docs/**/c.md", "--as-of", TODAY, "--dry-run")
    assert recursive.out.startswith("--- a/docs/sub/c.md\n")
