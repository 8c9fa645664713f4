from __future__ import annotations

from pathlib import Path

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
    assert settings.content.root == Path("seeds")
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


def test_shipped_config_files_load_and_match_the_defaults_they_document() -> None:
    shipped = load_settings(REPO / "config" / "scheduler.toml")
    defaults = Settings()
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
        assert getattr(shipped, section) == getattr(defaults, section), section
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
    with pytest.raises(ValueError, match="frozen"):
        settings.review.due_soon_days = 3


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
