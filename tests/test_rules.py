"""Rule identity: every problem carries a stable code and name; warnings can be switched off."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import ConfigError, MetadataRules, load_settings, validated
from scheduler.content.fields import FIELDS
from scheduler.rules import INVALID, RULES, find

from .conftest import REPO, frontmatter, write_doc


def test_codes_and_names_are_unique_and_well_formed() -> None:
    assert len({rule.name for rule in RULES.values()}) == len(RULES)
    for code, rule in RULES.items():
        assert rule.code == code and re.fullmatch(r"RS[1-3]\d\d", code), code
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), rule.name
    # one invalid-value rule per field of the registry, with the field's own code
    assert {field.code for field in FIELDS} == {INVALID[f.name].code for f in FIELDS}


def test_the_readme_lists_every_rule() -> None:
    readme = (REPO / "README.md").read_text()
    for rule in RULES.values():
        assert f"| `{rule.code}` | `{rule.name}` |" in readme, rule.code


def test_rules_are_found_by_code_or_name() -> None:
    assert find("RS204") is find("unknown-key") is find(" rs204 ") is RULES["RS204"]
    assert find("RS999") is None and find("no-such-rule") is None


HAZARDS = {
    "empty.md": "",
    "no-fence.md": "title: x\n",
    "unclosed.md": "---\ntitle: x\n",
    "syntax.md": "---\ntitle: [unclosed\n---\n",
    "list.md": "---\n- a\n- b\n---\n",
    "alias.md": "---\na: &x 1\nb: *x\n---\n",
    "duplicate.md": frontmatter(title="A\ntitle: B"),
    "bad-date.md": frontmatter(lastReviewed="2025-02-30"),
    "ambiguous.md": frontmatter(reviewFrequency="biannually"),
    "typo.md": frontmatter(lastReviewed=None, lastReveiwed="2026-01-01"),
    "empty-value.md": frontmatter(source=""),
    "future.md": frontmatter(lastReviewed="2099-01-01"),
    "owner.md": frontmatter(owner="not an address"),
}


@pytest.fixture
def hazards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in HAZARDS.items():
        write_doc(tmp_path / "docs" / name, text)
    write_doc(tmp_path / "config" / "scheduler.toml", '[content]\nroot = "docs"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_problem_names_its_rule(hazards: Path, run: Any) -> None:
    data = json.loads(run("validate", "--format", "json", "--as-of", "2026-05-01").out)
    seen = {}
    for file in data["files"]:
        for problem in file["problems"]:
            rule = RULES[problem["code"]]
            assert problem["rule"] == rule.name
            seen[rule.name] = file["path"]
    assert {
        "empty-file",
        "no-frontmatter",
        "unclosed-frontmatter",
        "yaml-syntax",
        "not-a-mapping",
        "anchor-or-alias",
        "duplicate-key",
        "invalid-last-reviewed",
        "invalid-review-frequency",
        "missing-field",
        "unknown-key",
        "empty-value",
        "future-review",
    } <= set(seen)
    report = json.loads(run("--format", "json", "--as-of", "2026-05-01", prog="check-reviews").out)
    owner = next(d for d in report["documents"] if d["path"].endswith("owner.md"))
    assert [p["message"] for p in owner["problems"] if p["field"] == "owner"] == [
        "'not an address' is neither an email address nor a known alias"
    ]


def test_yaml_errors_give_a_column(hazards: Path, run: Any) -> None:
    data = json.loads(run("validate", "docs/syntax.md", "docs/alias.md", "--format", "json").out)
    columns = {
        f["path"]: [p["column"] for p in f["problems"] if p["severity"] == "error"]
        for f in data["files"]
    }
    assert columns == {"docs/alias.md": [4], "docs/syntax.md": [1]}  # &x; the end of input


def test_ignore_switches_warnings_off_by_code_or_name(hazards: Path, run: Any) -> None:
    before = run("validate", "docs/typo.md", "docs/empty-value.md").out
    assert "unknown key" in before and "source: is empty" in before
    config = hazards / "config" / "scheduler.toml"
    config.write_text('[content]\nroot = "docs"\n[metadata]\nignore = ["unknown-key", "RS203"]\n')
    after = run("validate", "docs/typo.md", "docs/empty-value.md").out
    assert "unknown key" not in after and "source: is empty" not in after
    assert "lastReviewed: is missing" in after  # an error: never switched off
    assert load_settings(config).metadata.ignore == ("RS204", "RS203")


@pytest.mark.parametrize(
    ("ignore", "message"),
    [
        (["RS211"], "RS211 invalid-last-reviewed is always an error"),
        (["duplicate-key"], "RS115 duplicate-key is always an error"),
        (["RS999"], "'RS999' is not a rule code or name"),
    ],
)
def test_only_warnings_can_be_switched_off(ignore: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        validated(MetadataRules, {"ignore": ignore})


def test_an_unknown_rule_in_the_config_names_the_key(tmp_path: Path) -> None:
    config = write_doc(tmp_path / "c.toml", '[metadata]\nignore = ["unknwon-key"]\n')
    with pytest.raises(ConfigError, match=r"\[metadata\] ignore"):
        load_settings(config)
