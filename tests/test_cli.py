"""The commands end to end, in-process: exact output and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from scheduler.commands import main as cli
from scheduler.commands.logs import setup_logging

from .conftest import REPO, frontmatter, write_doc


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(
        tmp_path / "config" / "scheduler.toml",
        '[content]\nroot = "docs"\n[routing]\ndefault = ["team@example.org"]\n',
    )
    write_doc(tmp_path / "docs" / "good.md", frontmatter())
    write_doc(tmp_path / "docs" / "warn.md", frontmatter(url=None))
    write_doc(
        tmp_path / "docs" / "bad.md",
        frontmatter(lastReviewed="2025-02-30", reviewFrequency="biannually"),
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


VALIDATE_TEXT = """\
docs/bad.md:3: error: lastReviewed: '2025-02-30' is not a real date (use YYYY-MM-DD)
docs/bad.md:4: error: reviewFrequency: 'biannually' is ambiguous: it can mean twice a year or every two years (write 'semiannually' for every 6 months or 'biennially' for every 2 years)
docs/warn.md:1: warning: url: is missing (add 'url: https://...' to the frontmatter)
3 files checked: 2 valid, 1 with errors; 2 errors, 1 warning
"""  # noqa: E501

VALIDATE_GITHUB = """\
::error file=docs/bad.md,line=3,title=Invalid metadata::lastReviewed: '2025-02-30' is not a real date (use YYYY-MM-DD)
::error file=docs/bad.md,line=4,title=Invalid metadata::reviewFrequency: 'biannually' is ambiguous: it can mean twice a year or every two years (write 'semiannually' for every 6 months or 'biennially' for every 2 years)
::warning file=docs/warn.md,line=1,title=Metadata warning::url: is missing (add 'url: https://...' to the frontmatter)
3 files checked: 2 valid, 1 with errors; 2 errors, 1 warning
"""  # noqa: E501


def test_validate_text(library: Path, run: Any) -> None:
    result = run("validate", "--as-of", "2026-05-01")
    assert (result.code, result.out, result.err) == (1, VALIDATE_TEXT, "")


def test_validate_github(library: Path, run: Any) -> None:
    result = run("validate", "--as-of", "2026-05-01", "--format", "github")
    assert (result.code, result.out) == (1, VALIDATE_GITHUB)


def test_validate_json(library: Path, run: Any) -> None:
    result = run("validate", "--as-of", "2026-05-01", "--format", "json")
    data = json.loads(result.out)
    assert data["schema_version"] == 1 and data["as_of"] == "2026-05-01"
    assert data["summary"] == {"files": 3, "valid": 2, "invalid": 1, "errors": 2, "warnings": 1}
    assert [(f["path"], f["valid"], len(f["problems"])) for f in data["files"]] == [
        ("docs/bad.md", False, 2),
        ("docs/good.md", True, 0),
        ("docs/warn.md", True, 1),
    ]
    assert data["files"][0]["problems"][0] == {
        "severity": "error",
        "field": "lastReviewed",
        "line": 3,
        "message": "'2025-02-30' is not a real date",
        "hint": "use YYYY-MM-DD",
        "code": "RS211",
        "rule": "invalid-last-reviewed",
        "column": None,
    }


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["docs/good.md"], 0),
        (["docs/warn.md"], 0),
        (["docs/warn.md", "--strict"], 1),
        (["docs/good.md", "--strict"], 0),
        (["docs/bad.md"], 1),
    ],
)
def test_validate_exit_codes(library: Path, run: Any, args: list[str], code: int) -> None:
    assert run("validate", *args).code == code


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["validate", "--as-of", "2026-13-01"],
            "'2026-13-01' is not a real date (use YYYY-MM-DD)",
        ),
        (["validate", "--format", "xml"], "'xml' is not one of"),
        (["validate", "nowhere.md"], "review-scheduler: error: no such file or folder: nowhere.md"),
        (
            ["validate", "--config", "missing.toml"],
            "review-scheduler: error: config file missing.toml (from --config) does not exist",
        ),
        (
            ["check", "--state", "late"],
            "'late' is not one of invalid, overdue, due_soon, ok, exempt",
        ),
        (["check", "--fail-on", "sometimes"], "'sometimes' is not one of"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2(library: Path, run: Any, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.code == 2
    assert message in result.err
    assert result.out == ""


def test_config_errors_exit_2_and_name_key_and_file(library: Path, run: Any) -> None:
    write_doc(library / "config" / "scheduler.toml", "[review]\ndue_son_days = 3\n")
    result = run("validate")
    assert result.code == 2
    assert result.err == (
        "review-scheduler: error: invalid configuration:\n"
        "  config/scheduler.toml: unknown key [review] due_son_days "
        "(did you mean 'due_soon_days'?)\n"
    )


def test_missing_content_root_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    write_doc(tmp_path / "review-scheduler.toml", '[content]\nroot = "docs"\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)  # the root is taken from the config's folder, from anywhere
    result = run("validate")
    assert result.code == 2
    assert "the content root docs does not exist" in result.err
    monkeypatch.chdir(tmp_path / "sub")
    result = run("validate")
    assert result.code == 2
    assert f"the content root {tmp_path / 'docs'} does not exist" in result.err


def test_unexpected_failure_exits_3_with_a_log(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("scheduler.commands.validate.validate_files", explode)
    result = run("validate")
    assert result.code == 3
    match = re.fullmatch(
        r"review-scheduler: unexpected error: RuntimeError\('boom'\); "
        r"details in (\S+)\n",
        result.err,
    )
    assert match is not None
    assert "RuntimeError: boom" in Path(match.group(1)).read_text()
    assert Path(match.group(1)).is_relative_to(library)  # $TMPDIR is the test's folder


def test_one_broken_file_never_stops_the_run(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scheduler.content.reading as reading

    real = reading.load_document

    def flaky(file: Any, max_bytes: int) -> Any:
        if file.display == "docs/good.md":
            raise MemoryError("simulated")
        return real(file, max_bytes)

    monkeypatch.setattr(reading, "load_document", flaky)
    result = run("validate", "--as-of", "2026-05-01")
    assert result.code == 1
    assert "docs/good.md: error: could not be checked: MemoryError('simulated')" in result.out
    assert "3 files checked" in result.out


def test_check_of_the_seed_as_shipped(
    run: Any, monkeypatch: pytest.MonkeyPatch, store_in_tmp: Path
) -> None:
    monkeypatch.chdir(REPO)
    result = run("--as-of", "2026-11-27", "--format", "json", prog="check-reviews")
    assert result.code == 1
    doc = json.loads(result.out)["documents"][0]
    assert (doc["state"], doc["due"], doc["days_until_due"]) == ("overdue", "2026-03-30", -242)
    assert doc["editors"] == ["nci-editor@example.org"]


def test_validate_of_the_seed_as_shipped(
    run: Any, monkeypatch: pytest.MonkeyPatch, store_in_tmp: Path
) -> None:
    monkeypatch.chdir(REPO)
    result = run("validate", "seeds/", "--as-of", "2026-11-27")
    assert (result.code, result.out) == (
        0,
        "1 file checked: 1 valid, 0 with errors; 0 errors, 0 warnings\n",
    )


def test_govuk_convention_corpus(
    run: Any, monkeypatch: pytest.MonkeyPatch, store_in_tmp: Path
) -> None:
    # The corpus's review-scheduler.toml is a link to the example, found as a user's own
    # config is, and taking its paths from the corpus's folder (where the link is).
    monkeypatch.chdir(REPO / "tests" / "corpora" / "govuk" / "source" / "documentation")
    result = run(
        "--as-of",
        "2026-11-27",
        "--format",
        "json",
        prog="check-reviews",
    )
    data = json.loads(result.out)
    got = [
        (d["path"].removeprefix("source/documentation/"), d["state"], d["due"], d["editors"])
        for d in data["documents"]
    ]
    assert got == [
        ("infrastructure/broken.html.md.erb", "invalid", None, ["platform-team@example.gov.uk"]),
        (
            "manual/rotate-secrets.html.md.erb",
            "overdue",
            "2026-02-01",
            ["docs-maintainers@example.gov.uk"],
        ),
        (
            "manual/old-guide.html.md.erb",
            "overdue",
            "2026-09-15",
            ["docs-maintainers@example.gov.uk"],
        ),
        (
            "manual/deploy-an-app.html.md.erb",
            "due_soon",
            "2026-11-30",
            ["platform-team@example.gov.uk"],
        ),
        (
            "index.html.md.erb",
            "ok",
            "2027-04-01",
            ["data-team@example.gov.uk", "data-lead@example.gov.uk"],
        ),
        (
            "infrastructure/dns.html.md.erb",
            "ok",
            "2027-11-10",
            [
                "data-team@example.gov.uk",
                "data-lead@example.gov.uk",
                "platform-team@example.gov.uk",
            ],
        ),
    ]
    assert data["timezone"] == "Europe/London"
    problems = {
        (d["path"].rsplit("/", 1)[-1], p["field"], p["line"])
        for d in data["documents"]
        for p in d["problems"]
    }
    assert problems == {
        ("broken.html.md.erb", "last_reviewed_on", 3),
        ("broken.html.md.erb", "review_in", 4),
        ("old-guide.html.md.erb", "owner_slack", 6),
    }


def test_installed_console_scripts_run_the_seed(store_in_tmp: Path) -> None:
    """The Quick start's main job, through the installed entry point, in a real process."""
    bindir = Path(sys.executable).parent
    check = subprocess.run(
        [bindir / "check-reviews", "--as-of", "2026-11-27"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1
    assert check.stdout.startswith(
        "Review status on 2026-11-27 (UTC): 1 document: 1 overdue, 0 due soon, 0 ok, "
        "0 exempt, 0 invalid\n"
    )
    validate = subprocess.run(
        [bindir / "review-scheduler", "validate", "seeds/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert validate.returncode == 0
    module = subprocess.run(
        [sys.executable, "-m", "scheduler", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert module.stdout.startswith("review-scheduler, version ")


# --------------------------------------------------------------------------- docs in step


def _commands() -> dict[str, click.Command]:
    commands: dict[str, click.Command] = {"check-reviews": cli.check_reviews}
    context = click.Context(cli.cli)
    for name in cli.cli.list_commands(context):
        command = cli.cli.get_command(context, name)
        assert command is not None
        if isinstance(command, click.Group):
            for sub, subcommand in command.commands.items():
                commands[f"review-scheduler {name} {sub}"] = subcommand
        commands[f"review-scheduler {name}"] = command
    return commands


@pytest.mark.parametrize("name", sorted(_commands()))
def test_readme_documents_every_command_and_option(name: str) -> None:
    readme = (REPO / "README.md").read_text()
    heading = f"### `{name}"
    assert heading in readme, f"README has no section for {name}"
    section = readme.split(heading, 1)[1].split("\n### ", 1)[0]
    command = _commands()[name]
    for param in command.params:
        if isinstance(param, click.Option):
            long_names = [o for o in param.opts if o.startswith("--")]
            assert any(o in section for o in long_names), f"{name}: {long_names} not in README"


def test_exit_codes_are_documented_in_help_and_readme(run: Any) -> None:
    readme = (REPO / "README.md").read_text()
    for text in ("0 ", "1 ", "2 ", "3 "):
        assert f"| {text.strip()} |" in readme
    assert "Exit codes: 0 no errors" in run("validate", "--help").out
    assert "Exit codes: 0 nothing matched --fail-on" in run("--help", prog="check-reviews").out


def test_log_lines_are_one_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    setup_logging(0)
    log = logging.getLogger("scheduler.test")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        log.exception("cycle failed")
    err = capsys.readouterr().err
    assert err == "ERROR scheduler.test: cycle failed: ValueError: bad thing\n"
    setup_logging(0, "json")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("cycle failed")
    line = capsys.readouterr().err
    assert line.count("\n") == 1
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "error",
        "scheduler.test",
        "cycle failed",
    )
    assert "ValueError: boom" in entry["error"]
    setup_logging(0)


def test_log_lines_go_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import logging

    setup_logging(0)
    log = logging.getLogger("scheduler.test")
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    log.warning("one")
    first.close()  # as a test's captured stream is, once the test is over
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    log.warning("two")  # must not write to the closed stream
    assert second.getvalue() == "WARNING scheduler.test: two\n"
