"""Choosing which warnings are reported: --select, --ignore, [metadata] select / ignore /
per_path_ignores, a document's review-scheduler-ignore, --statistics; errors never switched off;
validate and check agreeing on every warning, in one JSON style."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import ConfigError, load_settings
from scheduler.rule_selection import RuleSelection, normalise
from scheduler.rules import RULES

from .conftest import frontmatter, write_doc

AS_OF = "2026-05-01"
OWNED = '"editor@example.org"'

# Every kind of warning, each from one document (the RS121 one is made with a non-UTF-8 name).
# A new warning rule needs a document here: test_the_corpus_gives_every_warning checks.
WARNINGS = {
    "missing-recommended.md": frontmatter(url=None, owner=OWNED),
    "empty-optional.md": frontmatter(source="", owner=OWNED),
    "unknown-key.md": frontmatter(colour="blue", owner=OWNED),
    "unknown-owner.md": frontmatter(owner="not an address"),
    "nobody.md": frontmatter(),
    "bad-ignore.md": frontmatter(owner=OWNED, **{"review-scheduler-ignore": "[no-such-rule]"}),
    "two-due-dates.md": frontmatter(reviewBy="2031-01-01", owner=OWNED),
    "legacy/old.md": frontmatter(url=None, colour="red", owner=OWNED),
    # errors, which are always reported
    "future.md": frontmatter(lastReviewed="2099-01-01", owner=OWNED),
    "missing.md": frontmatter(license=None, owner=OWNED),
}
NOT_UTF8_NAME = b"caf\xe9.md"


def make_library(root: Path, config: str = "") -> Path:
    for name, text in WARNINGS.items():
        write_doc(root / "docs" / name, text)
    write_doc(root / "docs" / os.fsdecode(NOT_UTF8_NAME), frontmatter(owner=OWNED))
    write_doc(root / "config" / "scheduler.toml", '[content]\nroot = "docs"\n' + config)
    return root


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_library(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def configure(root: Path, config: str) -> None:
    write_doc(root / "config" / "scheduler.toml", '[content]\nroot = "docs"\n' + config)


def validate_problems(run: Any, *args: str) -> set[tuple[str, str, str]]:
    result = run("validate", "--format", "json", "--as-of", AS_OF, *args)
    assert result.code in (0, 1), result.err
    data = json.loads(result.out)
    return {(f["path"], p["code"], p["severity"]) for f in data["files"] for p in f["problems"]}


def check_problems(run: Any, *args: str, prog: str = "check-reviews") -> set[tuple[str, str, str]]:
    command = () if prog == "check-reviews" else ("check",)
    fixed = ("--format", "json", "--as-of", AS_OF, "--fail-on", "never")
    result = run(*command, *fixed, *args, prog=prog)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    return {(d["path"], p["code"], p["severity"]) for d in data["documents"] for p in d["problems"]}


COMMANDS = ["validate", "check", "check-reviews"]


def problems_of(command: str, run: Any, *args: str) -> set[tuple[str, str, str]]:
    if command == "validate":
        return validate_problems(run, *args)
    if command == "check":
        return check_problems(run, *args, prog="review-scheduler")
    return check_problems(run, *args)


def codes(problems: set[tuple[str, str, str]], severity: str | None = None) -> set[str]:
    return {code for _, code, sev in problems if severity is None or sev == severity}


# --------------------------------------------------------------------------- item 2: agreement


def test_the_corpus_gives_every_warning(library: Path, run: Any) -> None:
    every = {code for code, rule in RULES.items() if rule.can_warn}
    assert codes(validate_problems(run), "warning") == every


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache-warm"])
def test_validate_and_check_report_the_same_problems(library: Path, run: Any, cached: bool) -> None:
    extra = () if cached else ("--no-cache",)
    if cached:
        validate_problems(run)  # fills the parse cache
    from_validate = validate_problems(run, *extra)
    from_check = check_problems(run, *extra)
    assert from_validate == from_check
    assert ("docs/unknown-owner.md", "RS301", "warning") in from_validate
    assert ("docs/nobody.md", "RS302", "warning") in from_validate
    assert ("docs/caf\\xe9.md", "RS121", "warning") in from_validate


def test_exempt_documents_need_no_editor_in_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    write_doc(tmp_path / "docs" / "draft.md", frontmatter(status="draft"))
    write_doc(tmp_path / "docs" / "active.md", frontmatter())
    configure(tmp_path, "")
    monkeypatch.chdir(tmp_path)
    want = {("docs/active.md", "RS302", "warning")}
    assert validate_problems(run) == want == check_problems(run)


# --------------------------------------------------------------------------- item 3: JSON style

PROBLEM_KEYS = ["severity", "field", "line", "message", "hint", "code", "rule", "column"]


def test_both_reports_write_problems_with_the_same_keys(library: Path, run: Any) -> None:
    validated = json.loads(run("validate", "--format", "json", "--as-of", AS_OF).out)
    checked = json.loads(run("--format", "json", "--as-of", AS_OF, prog="check-reviews").out)
    from_validate = [p for f in validated["files"] for p in f["problems"]]
    from_check = [p for d in checked["documents"] for p in d["problems"]]
    assert from_validate and from_check
    assert {tuple(p) for p in from_validate} == {tuple(p) for p in from_check}
    assert {tuple(p) for p in from_check} == {tuple(PROBLEM_KEYS)}
    for data, items in ((validated, "files"), (checked, "documents")):
        keys = list(data)
        assert keys[:3] == ["schema_version", "as_of", "timezone"]
        assert keys[-2:] == ["summary", items]
        assert all(next(iter(item)) == "path" for item in data[items])
    assert validated["timezone"] == checked["timezone"] == "UTC"
    empty = next(p for p in from_check if p["code"] == "RS203")
    assert empty == {
        "severity": "warning",
        "field": "source",
        "line": 8,
        "message": "is empty",
        "hint": "write a value after the colon, or remove the line",
        "code": "RS203",
        "rule": "empty-value",
        "column": None,
    }


# --------------------------------------------------------------------------- selectors


def test_selectors_are_codes_names_prefixes_or_all() -> None:
    assert normalise("unknown-key") == normalise(" rs204 ") == "RS204"
    assert normalise("rs3") == "RS3" and normalise("all") == "ALL"
    with pytest.raises(ValueError, match="'nope' is not a rule code or name"):
        normalise("nope")
    with pytest.raises(ValueError, match="RS201 missing-field is always an error"):
        normalise("missing-field")
    with pytest.raises(ValueError, match=r"'RS11' names only errors \(RS110 to RS119\)"):
        normalise("RS11")


def test_the_most_specific_selector_wins_and_a_tie_goes_to_ignore() -> None:
    assert RuleSelection.of().enabled == {c for c, r in RULES.items() if r.can_warn}
    no_rs2 = RuleSelection.of(ignore=["RS2"]).enabled
    assert "RS301" in no_rs2 and not {"RS202", "RS203", "RS204"} & no_rs2
    assert RuleSelection.of(select=["RS204"], ignore=["RS2"]).enabled == {"RS204"}
    rs2 = RuleSelection.of(select=["RS2"], ignore=["RS204"]).enabled
    assert rs2 == {"RS202", "RS203", "RS207"}
    assert RuleSelection.of(select=["RS204"], ignore=["unknown-key"]).enabled == frozenset()
    assert RuleSelection.of(select=["ALL"], ignore=["ALL"]).enabled == frozenset()
    assert "RS204" not in RuleSelection.of(select=["RS3"]).enabled


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("command", COMMANDS)
def test_ignore_on_the_command_line(library: Path, run: Any, command: str) -> None:
    everything = problems_of(command, run)
    without = problems_of(command, run, "--ignore", "RS3,unknown-key")
    assert without == {p for p in everything if p[1] not in {"RS301", "RS302", "RS204"}}
    assert codes(without, "error") == codes(everything, "error") == {"RS201", "RS205"}


@pytest.mark.parametrize("command", COMMANDS)
def test_select_on_the_command_line(library: Path, run: Any, command: str) -> None:
    selected = problems_of(command, run, "--select", "RS204", "--select", "RS30")
    assert codes(selected, "warning") == {"RS204", "RS301", "RS302"}
    assert codes(selected, "error") == {"RS201", "RS205"}  # errors stay


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--ignore", "RS201", "RS201 missing-field is always an error and cannot be switched off"),
        ("--select", "future-review", "RS205 future-review is always an error"),
        ("--ignore", "RS11", "'RS11' names only errors"),
        ("--ignore", "unknwon-key", "'unknwon-key' is not a rule code or name"),
    ],
)
def test_errors_cannot_be_selected_or_ignored(
    library: Path, run: Any, command: str, option: str, value: str, message: str
) -> None:
    args = (
        ("validate",) if command == "validate" else () if command == "check-reviews" else ("check",)
    )
    prog = "check-reviews" if command == "check-reviews" else "review-scheduler"
    result = run(*args, option, value, prog=prog)
    assert result.code == 2
    assert f"Invalid value for '{option}'" in result.err and message in result.err
    assert result.out == ""


def test_the_command_line_select_replaces_the_configs_and_ignore_adds(
    library: Path, run: Any
) -> None:
    configure(library, '[metadata]\nselect = ["RS2"]\nignore = ["RS202"]\n')
    assert codes(validate_problems(run), "warning") == {"RS203", "RS204", "RS207"}
    assert codes(validate_problems(run, "--select", "RS3"), "warning") == {"RS301", "RS302"}
    assert codes(validate_problems(run, "--ignore", "RS203"), "warning") == {"RS204", "RS207"}


def test_the_help_says_errors_are_always_reported(run: Any) -> None:
    for args, prog in (
        (("validate", "--help"), "review-scheduler"),
        (("--help",), "check-reviews"),
    ):
        text = " ".join(run(*args, prog=prog).out.split())
        assert "Errors are always reported and cannot be switched off" in text
        assert "--select RULE,..." in text and "--ignore RULE,..." in text


# --------------------------------------------------------------------------- config


def test_config_select_and_per_path_ignores(library: Path, run: Any) -> None:
    configure(
        library,
        '[metadata]\nselect = ["RS2", "unknown-owner"]\n'
        '[metadata.per_path_ignores]\n"legacy/**" = ["missing-recommended", "RS204"]\n',
    )
    settings = load_settings(library / "config" / "scheduler.toml")
    assert settings.metadata.select == ("RS2", "RS301")
    assert settings.metadata.per_path_ignores == {"legacy/**": ("RS202", "RS204")}
    for command in COMMANDS:
        found = problems_of(command, run)
        assert codes(found, "warning") == {"RS202", "RS203", "RS204", "RS207", "RS301"}
        assert not [p for p in found if p[0] == "docs/legacy/old.md"]  # only warnings there
        assert ("docs/missing-recommended.md", "RS202", "warning") in found


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ('select = ["RS201"]', r"\[metadata\] select", "RS201 missing-field is always an error"),
        ('ignore = ["RS1"]', None, None),  # RS121 is a warning: accepted
        (
            '[metadata.per_path_ignores]\n"a/**" = ["yaml-syntax"]',
            r"\[metadata\] per_path_ignores",
            "RS112 yaml-syntax is always an error",
        ),
    ],
)
def test_config_refuses_switching_errors_off(
    tmp_path: Path, config: str, key: str | None, message: str | None
) -> None:
    path = write_doc(tmp_path / "c.toml", "[metadata]\n" + config + "\n")
    if key is None:
        assert load_settings(path).metadata.ignore == ("RS1",)
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert message is not None and re.search(key, str(caught.value))
    assert message in str(caught.value)


# --------------------------------------------------------------------------- in the document


@pytest.mark.parametrize("form", ["[unknown-key, RS301]", '"RS204, unknown-owner"'])
def test_a_document_switches_warnings_off_for_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any, form: str
) -> None:
    quiet = {"colour": "blue", "owner": "not-an-address", "review-scheduler-ignore": form}
    write_doc(tmp_path / "docs" / "quiet.md", frontmatter(**quiet))
    write_doc(tmp_path / "docs" / "loud.md", frontmatter(colour="blue", owner="nobody"))
    configure(tmp_path, '[routing]\ndefault = ["team@example.org"]\n')
    monkeypatch.chdir(tmp_path)
    for command in COMMANDS:
        found = problems_of(command, run)
        assert {(p, c) for p, c, _ in found} == {
            ("docs/loud.md", "RS204"),
            ("docs/loud.md", "RS301"),
        }


def test_an_ignore_entry_that_switches_nothing_off_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    ignores = "[RS205, no-such-rule, 7, RS204]"
    fields = {"lastReviewed": "2099-01-01", "colour": "x", "review-scheduler-ignore": ignores}
    write_doc(tmp_path / "docs" / "a.md", frontmatter(owner=OWNED, **fields))
    configure(tmp_path, "")
    monkeypatch.chdir(tmp_path)
    result = run("validate", "--as-of", AS_OF)
    assert result.code == 1
    assert result.out == (
        "docs/a.md:3: error: lastReviewed: 2099-01-01 is after today (2026-05-01) (a review "
        "cannot be recorded in the future; check the year)\n"
        "docs/a.md:12: warning: review-scheduler-ignore: 'no-such-rule' is not a rule code or "
        "name, nor a prefix of codes (see the README's Rules) (list the codes or names of "
        "warnings; errors cannot be switched off)\n"
        "docs/a.md:12: warning: review-scheduler-ignore: 7 is not a rule code or name (list "
        "rule codes or names, for example [RS204, unknown-owner])\n"
        "docs/a.md:12: warning: review-scheduler-ignore: RS205 future-review is always an error "
        "and cannot be switched off: errors make a document invalid, and are always reported "
        "(list the codes or names of warnings; errors cannot be switched off)\n"
        "1 file checked: 0 valid, 1 with errors; 1 error, 3 warnings\n"
    )


# --------------------------------------------------------------------------- --statistics


@pytest.mark.parametrize("command", COMMANDS)
def test_statistics_count_problems_by_rule(library: Path, run: Any, command: str) -> None:
    args = (
        ("validate",) if command == "validate" else () if command == "check-reviews" else ("check",)
    )
    prog = "check-reviews" if command == "check-reviews" else "review-scheduler"
    fixed = ("--as-of", AS_OF, "--statistics", "--ignore", "RS121")
    text = run(*args, *fixed, prog=prog)
    assert text.code == 1  # as without --statistics: errors, and so invalid documents
    assert text.out == (
        "2  RS202  missing-recommended  warning  in 2 files\n"
        "2  RS204  unknown-key          warning  in 2 files\n"
        "2  RS302  nobody-responsible   warning  in 2 files\n"
        "1  RS140  invalid-ignore       warning  in 1 file\n"
        "1  RS201  missing-field        error    in 1 file\n"
        "1  RS203  empty-value          warning  in 1 file\n"
        "1  RS205  future-review        error    in 1 file\n"
        "1  RS207  due-dates-disagree   warning  in 1 file\n"
        "1  RS301  unknown-owner        warning  in 1 file\n"
        "12 problems (2 errors, 10 warnings) in 11 files\n"
    )
    lines = text.out.splitlines()
    data = json.loads(run(*args, *fixed, "--format", "json", prog=prog).out)
    assert data["summary"] == {"files": 11, "problems": 12, "errors": 2, "warnings": 10}
    assert list(data) == ["schema_version", "as_of", "timezone", "summary", "statistics"]
    assert data["statistics"][0] == {
        "code": "RS202",
        "rule": "missing-recommended",
        "severity": "warning",
        "count": 2,
        "errors": 0,
        "warnings": 2,
        "files": 2,
    }
    assert [c["code"] for c in data["statistics"]] == [line.split()[1] for line in lines[:-1]]


def test_statistics_follow_the_selection_and_name_mixed_severities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    write_doc(tmp_path / "docs" / "a.md", frontmatter(owner=OWNED, source="", title=""))
    configure(tmp_path, "")
    monkeypatch.chdir(tmp_path)
    result = run("validate", "--as-of", AS_OF, "--statistics")
    assert result.out == (
        "2  RS203  empty-value  error, warning  in 1 file\n"
        "2 problems (1 error, 1 warning) in 1 file\n"
    )
    quiet = run("validate", "--as-of", AS_OF, "--statistics", "--ignore", "empty-value")
    assert (
        quiet.out
        == "1  RS203  empty-value  error    in 1 file\n1 problem (1 error, 0 warnings) in 1 file\n"
    )


@pytest.mark.parametrize("fmt", ["markdown", "csv", "github"])
def test_statistics_are_text_or_json(library: Path, run: Any, fmt: str) -> None:
    result = run("--statistics", "--format", fmt, prog="check-reviews")
    assert result.code == 2
    assert f"--statistics prints text or json, not --format {fmt}" in result.err


def test_an_empty_ignore_key_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    fields = {"owner": OWNED, "review-scheduler-ignore": ""}
    write_doc(tmp_path / "docs" / "a.md", frontmatter(**fields))
    configure(tmp_path, "")
    monkeypatch.chdir(tmp_path)
    assert run("validate", "--as-of", AS_OF).out == (
        "docs/a.md:11: warning: review-scheduler-ignore: is empty (list rule codes or names, "
        "or remove the line)\n"
        "1 file checked: 1 valid, 0 with errors; 0 errors, 1 warning\n"
    )
