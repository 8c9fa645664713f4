from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import DEFAULT_CONFIG_PATH, Settings, find_config, load_settings
from scheduler.errors import ConfigError

from .conftest import REPO


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_built_in_defaults() -> None:
    settings = load_settings(None)
    assert settings.content.root == Path()  # no config file: the current folder
    assert settings.content.include == ("**/*.md", "**/*.markdown", "**/*.txt")
    assert settings.content.max_file_bytes == 1024 * 1024
    assert settings.review.timezone == "UTC" and settings.review.due_soon_days == 30
    assert settings.metadata.required == (
        "title",
        "last_reviewed",
        "review_frequency",
        "status",
        "license",
    )
    assert settings.fields.last_reviewed == "lastReviewed"


def test_shipped_config_files_load_and_match_the_defaults_they_document(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # so that paths are absolute
    shipped = load_settings(REPO / "config" / "scheduler.toml", cwd=elsewhere)
    # The example's paths are taken from the repository root, as the defaults of a config
    # file there are; its content root is this repository's sample library.
    defaults = load_settings(write(tmp_path / "config" / "scheduler.toml", ""), cwd=elsewhere)
    assert shipped.content.root == REPO / "seeds"
    shipped = dataclasses.replace(shipped, content=defaults.content)

    def relative(settings: Settings, section: str) -> str:
        dumped = json.dumps(dataclasses.asdict(getattr(settings, section)), default=str)
        return dumped.replace(str(REPO), "BASE").replace(str(tmp_path), "BASE")

    for section in (
        "content",
        "fields",
        "metadata",
        "review",
        "reminders",
        "mail",
        "smtp",
        "delivery",
        "daemon",
        "dashboard",
        "store",
        "performance",
    ):
        assert relative(shipped, section) == relative(defaults, section), section
    govuk = load_settings(REPO / "config" / "examples" / "govuk-tech-docs.toml")
    assert govuk.fields.last_reviewed == "last_reviewed_on"


def test_file_values_and_environment_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "s.toml", '[review]\ntimezone = "Europe/London"\ndue_soon_days = 10\n')
    monkeypatch.setenv("SCHEDULER_REVIEW__DUE_SOON_DAYS", "14")
    monkeypatch.setenv("SCHEDULER_CONTENT__EXCLUDE", '["drafts/**"]')
    settings = load_settings(path)
    assert settings.review.timezone == "Europe/London"  # from the file
    assert settings.review.due_soon_days == 14  # the environment wins
    assert settings.content.exclude == ("drafts/**",)


def test_settings_are_frozen() -> None:
    settings = load_settings(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.review.due_soon_days = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[review]\ndue_son_days = 3\n",
            "s.toml: unknown key [review] due_son_days (did you mean 'due_soon_days'?)",
        ),
        ("[reveiw]\ndue_soon_days = 3\n", "s.toml: unknown key 'reveiw' (did you mean 'review'?)"),
        (
            '[review]\ntimezone = "Mars/Olympus"\n',
            "s.toml: [review] timezone: unknown IANA time zone 'Mars/Olympus'",
        ),
        (
            "[review]\ndue_soon_days = -1\n",
            "s.toml: [review] due_soon_days: Input should be greater than or equal to 0",
        ),
        (
            '[metadata]\nreview_statuses = ["live"]\n',
            "s.toml: [metadata]: review_statuses ['live'] are not in statuses",
        ),
        (
            '[metadata]\nrequired = ["title"]\n',
            "required must include ['last_reviewed', 'review_frequency']",
        ),
        ('[fields]\nowner = "title"\n', "owner and title both read the key 'title'"),
        (
            '[routing]\ndefault = ["not-an-address"]\n',
            "default: 'not-an-address' is neither an email address nor a defined alias",
        ),
        (
            '[[routing.rules]]\neditors = ["a@example.org"]\n',
            "a rule needs a match table, a paths list, or both",
        ),
        ('[routing.aliases]\n"#team" = ["bad address"]\n', "'bad address' is not an email"),
        ("[review\n", "s.toml: not valid TOML"),
    ],
)
def test_bad_config_names_the_key_and_the_file(tmp_path: Path, toml: str, message: str) -> None:
    path = write(tmp_path / "s.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path, run: Any) -> None:
    """Not a crash (exit 3): the line and the byte are named."""
    (tmp_path / "review-scheduler.toml").write_bytes(b'[content]\nroot = "docs"\n# caf\xe9\n')
    (tmp_path / "docs").mkdir()
    with pytest.raises(ConfigError, match=r"not valid TOML: line 3 is not UTF-8 \(byte 0xe9\)"):
        load_settings(tmp_path / "review-scheduler.toml")
    result = run("--config", str(tmp_path / "review-scheduler.toml"), prog="check-reviews")
    assert result.code == 2 and "line 3 is not UTF-8" in result.err


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "s.toml", "[review]\ndue_soon_days = 3\n")
    monkeypatch.setenv("SCHEDULER_REVIEW__DUE_SOON_DAYS", "soon")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert (
        "SCHEDULER_REVIEW__DUE_SOON_DAYS: [review] due_soon_days: Input should be a valid "
        "integer" in str(caught.value)
    )


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(None, {}) is None
    write(tmp_path / DEFAULT_CONFIG_PATH, "")
    assert find_config(None, {}) == DEFAULT_CONFIG_PATH
    other = write(tmp_path / "other.toml", "")
    assert find_config(None, {"SCHEDULER_CONFIG": str(other)}) == other
    explicit = write(tmp_path / "explicit.toml", "")
    assert find_config(explicit, {"SCHEDULER_CONFIG": str(other)}) == explicit
    with pytest.raises(ConfigError, match=r"missing.toml \(from SCHEDULER_CONFIG\) does not exist"):
        find_config(None, {"SCHEDULER_CONFIG": "missing.toml"})
    with pytest.raises(ConfigError, match=r"nope.toml \(from --config\) does not exist"):
        find_config(Path("nope.toml"), {})


def test_config_is_found_in_the_current_folder_or_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / "project" / "docs" / "guides"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_config(None, {}) is None
    # A pyproject.toml without [tool.review-scheduler] is passed over.
    write(tmp_path / "project" / "pyproject.toml", "[tool.ruff]\nline-length = 100\n")
    assert find_config(None, {}) is None
    write(tmp_path / "pyproject.toml", "[tool.review-scheduler.review]\ndue_soon_days = 9\n")
    assert find_config(None, {}) == tmp_path / "pyproject.toml"
    assert load_settings(find_config(None, {})).review.due_soon_days == 9
    write(tmp_path / "project" / "docs" / ".review-scheduler.toml", "")
    assert find_config(None, {}) == tmp_path / "project" / "docs" / ".review-scheduler.toml"
    write(tmp_path / "project" / "docs" / "review-scheduler.toml", "")
    assert find_config(None, {}) == tmp_path / "project" / "docs" / "review-scheduler.toml"
    # Found in the current folder, it is named as a relative path.
    monkeypatch.chdir(tmp_path / "project" / "docs")
    assert find_config(None, {}) == Path("review-scheduler.toml")
    # config/scheduler.toml is the last resort, in the current folder only.
    write(tmp_path / "project" / "docs" / "guides" / "config" / "scheduler.toml", "")
    assert find_config(None, {}) == Path("review-scheduler.toml")
    monkeypatch.chdir(deep)
    assert find_config(None, {}) == tmp_path / "project" / "docs" / "review-scheduler.toml"
    (tmp_path / "project" / "docs" / "review-scheduler.toml").unlink()
    (tmp_path / "project" / "docs" / ".review-scheduler.toml").unlink()
    (tmp_path / "pyproject.toml").unlink()
    assert find_config(None, {}) == DEFAULT_CONFIG_PATH
    # --config and $SCHEDULER_CONFIG still win over what the search finds.
    other = write(tmp_path / "other.toml", "")
    assert find_config(None, {"SCHEDULER_CONFIG": str(other)}) == other
    assert find_config(Path("config/scheduler.toml"), {"SCHEDULER_CONFIG": str(other)}) == Path(
        "config/scheduler.toml"
    )


def test_a_broken_pyproject_on_the_way_up_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "pyproject.toml", "[tool\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"pyproject\.toml: not valid TOML"):
        find_config(None, {})
    write(tmp_path / "pyproject.toml", 'tool = "review-scheduler"\n')
    assert find_config(None, {}) is None
    write(tmp_path / "pyproject.toml", '[tool]\n"review-scheduler" = 3\n')
    with pytest.raises(ConfigError, match=r"\[tool.review-scheduler\] must be a table"):
        load_settings(find_config(None, {}) or Path("pyproject.toml"))
    write(tmp_path / "pyproject.toml", "[tool.review-scheduler.review]\ndue_son_days = 3\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml: unknown key"):
        load_settings(find_config(None, {}))


def test_relative_paths_are_taken_from_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    config = write(
        project / "review-scheduler.toml",
        '[content]\nroot = "docs"\n[mail]\ntemplates = "mail"\noutbox_dir = "out/box"\n'
        '[smtp]\nca_file = "ca.pem"\n[dashboard]\nout = "../site"\n'
        '[store]\nurl = "sqlite:///state/s.sqlite3"\n',
    )
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    settings = load_settings(config)
    assert settings.content.root == project / "docs"
    assert settings.mail.templates == project / "mail"
    assert settings.mail.outbox_dir == project / "out" / "box"
    assert settings.smtp.ca_file == project / "ca.pem"
    assert settings.dashboard.out == tmp_path / "site"
    assert settings.store.url == f"sqlite:///{project}/state/s.sqlite3"
    # The same file named relatively reads the same. Paths below the current folder are held
    # relative to it, as messages show them.
    monkeypatch.chdir(tmp_path)
    assert load_settings(Path("project/review-scheduler.toml"), tmp_path / "elsewhere") == settings
    here = load_settings(config)
    assert here.content.root == Path("project/docs")
    assert here.store.url == "sqlite:///project/state/s.sqlite3"
    monkeypatch.chdir(project)
    assert load_settings(config).content.root == Path("docs")
    # Absolute paths stay as written; the older [store] path is taken from the folder too.
    write(config, f'[content]\nroot = "{tmp_path}"\n[store]\npath = "s.sqlite3"\n')
    settings = load_settings(config)
    assert settings.content.root == tmp_path
    assert settings.store.url == "sqlite:///s.sqlite3"  # from the current folder, project/


def test_a_config_file_puts_the_content_root_and_the_store_in_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "project" / "review-scheduler.toml", "[review]\ndue_soon_days = 3\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    settings = load_settings(config)
    assert settings.content.root == tmp_path / "project"  # not the sample seeds/
    assert settings.store.url == f"sqlite:///{tmp_path}/project/.review-scheduler/state.sqlite3"
    assert settings.mail.outbox_dir == tmp_path / "project" / ".review-scheduler" / "outbox"
    # config/scheduler.toml takes its paths from the folder that holds config/.
    legacy = write(tmp_path / "project" / "config" / "scheduler.toml", "")
    assert load_settings(legacy).content.root == tmp_path / "project"
    assert load_settings(legacy).store.url == settings.store.url
    # Values from the environment, relative ones included, are taken from the current folder.
    monkeypatch.setenv("SCHEDULER_CONTENT__ROOT", "here")
    monkeypatch.setenv("SCHEDULER_STORE__URL", "sqlite:///mine.sqlite3")
    settings = load_settings(config)
    assert settings.content.root == Path("here")
    assert settings.store.url == "sqlite:///mine.sqlite3"
    monkeypatch.delenv("SCHEDULER_STORE__URL")
    monkeypatch.setenv("SCHEDULER_STORE__PATH", "old.sqlite3")
    assert load_settings(config).store.url == "sqlite:///old.sqlite3"
    # With no file at all, the defaults are relative to the current folder.
    monkeypatch.delenv("SCHEDULER_STORE__PATH")
    defaults = load_settings(None)
    assert defaults.store.url == "sqlite:///.review-scheduler/state.sqlite3"
    assert defaults.mail.outbox_dir == Path(".review-scheduler/outbox")


def test_settings_are_the_same_with_and_without_an_environment_variable_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no SCHEDULER_ variable set, a run does not import pydantic-settings (start-up):
    # the file alone must then give exactly what the environment-reading model gives.
    for name in [n for n in os.environ if n.upper().startswith("SCHEDULER_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "scheduler.toml"
    config.write_text(
        '[content]\nroot = "docs"\nexclude = ["drafts/**"]\n'
        '[review]\ndue_soon_days = 21\n[routing]\ndefault = ["team@example.org"]\n',
        encoding="utf-8",
    )
    plain = load_settings(config, cwd=tmp_path)
    monkeypatch.setenv("SCHEDULER_REVIEW__DUE_SOON_DAYS", "21")  # the file's own value
    from_environment = load_settings(config, cwd=tmp_path)
    assert type(plain) is Settings and type(from_environment) is Settings
    assert "pydantic_settings" in sys.modules  # the environment-reading model was used
    assert plain == from_environment
    assert plain.review.due_soon_days == 21 and plain.content.exclude == ("drafts/**",)
