"""The validated-settings cache (scheduler/settings_cache.py): a hit gives exactly the settings
a validation gives, anything that could change them misses, and a cache that cannot be trusted,
read or written never fails a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler import config, settings_cache
from scheduler.config import SECTION_CLASSES, Settings, load_settings, validated
from scheduler.errors import ConfigError

from .conftest import REPO, write_doc

CONFIGS = sorted(
    [
        REPO / "config" / "scheduler.toml",
        *(REPO / "config" / "examples").glob("*.toml"),
        *(REPO / "tests" / "corpora").glob("*/review-scheduler.toml"),
    ]
)
FULL = """\
[content]
root = "docs"
exclude = ["drafts/**"]
[metadata]
ignore = ["unknown-key"]
per_path_ignores = {"news/**" = ["RS2"]}
[review]
timezone = "Europe/London"
default_frequency = "1 year"
[[review.frequencies]]
paths = ["guides/**"]
frequency = "6 months"
[routing]
default = ["team"]
aliases = {team = ["a@example.org", "b@example.org"]}
[[routing.rules]]
name = "NCI"
match = {source = ["NCI", "NIH"]}
editors = ["nci@example.org"]
[mail]
allowed_domains = ["@Example.org."]
templates = "mail"
[smtp]
host = "localhost"
security = "none"
port = 2525
ca_file = "/etc/ssl/extra.pem"
[delivery]
retry_max_seconds = inf
[health]
delivery_failing_seconds = 90.5
[dashboard]
out = "site/freshness"
[links]
edit_url = "https://example.org/edit/{path}"
"""


def cache_of(config_file: Path) -> Path:
    return settings_cache.cache_file(config.config_base(config_file))


def project(tmp_path: Path, text: str = FULL) -> Path:
    """A project folder whose state folder exists, as after a first run."""
    (tmp_path / "proj" / ".review-scheduler").mkdir(parents=True)
    return write_doc(tmp_path / "proj" / "config" / "scheduler.toml", text)


def no_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on a validation fails the test: what loads must come from the cache."""

    def refuse(path: Path | None, cwd: Path) -> Settings:
        raise AssertionError("validated instead of reading the settings cache")

    monkeypatch.setattr(config, "_validate", refuse)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_decoded_settings_equal_validated_ones(path: Path, tmp_path: Path) -> None:
    # Every shipped and example config, encoded as the cache keeps it and decoded again.
    fresh = config._validate(path, tmp_path)
    stored = json.loads(json.dumps(settings_cache.encode(fresh)))
    decoded = settings_cache.decode(stored, SECTION_CLASSES)
    assert decoded == fresh and type(decoded) is Settings
    assert repr(decoded) == repr(fresh)  # the same types too: a Path is not its string


def test_a_hit_gives_what_validation_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = project(tmp_path)
    cwd = tmp_path / "proj"
    fresh = load_settings(path, cwd=cwd)
    assert cache_of(path).is_file()
    assert fresh.delivery.retry_max_seconds == float("inf")
    assert fresh.mail.allowed_domains == ("example.org",)  # as validation normalised it
    no_validation(monkeypatch)
    cached = load_settings(path, cwd=cwd)
    assert cached == fresh and repr(cached) == repr(fresh)
    assert cached.review.zone.key == "Europe/London"


def test_defaults_validate_to_the_defaults_used_without_a_file() -> None:
    # With no config file the defaults are used unvalidated: they must be what validation gives.
    assert validated(Settings, {}) == Settings() == load_settings(None)
    assert repr(validated(Settings, {})) == repr(Settings())


def test_a_changed_file_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = project(tmp_path, "[review]\ndue_soon_days = 10\n")
    assert load_settings(path, cwd=tmp_path).review.due_soon_days == 10
    path.write_text("[review]\ndue_soon_days = 11\n", encoding="utf-8")
    assert load_settings(path, cwd=tmp_path).review.due_soon_days == 11
    # the same bytes written again (a new modification time) miss too, and give the same
    stamp = path.stat().st_mtime_ns
    path.write_text("[review]\ndue_soon_days = 11\n", encoding="utf-8")
    os.utime(path, ns=(stamp + 1_000_000_000, stamp + 1_000_000_000))
    before = cache_of(path).read_text(encoding="utf-8")
    assert load_settings(path, cwd=tmp_path).review.due_soon_days == 11
    assert cache_of(path).read_text(encoding="utf-8") != before  # re-validated, re-written


def test_an_invalid_file_is_reported_even_after_a_valid_one(tmp_path: Path) -> None:
    path = project(tmp_path, "[review]\ndue_soon_days = 10\n")
    load_settings(path, cwd=tmp_path)
    path.write_text("[review]\ndue_soon_days = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="due_soon_days"):
        load_settings(path, cwd=tmp_path)


def test_another_current_folder_misses(tmp_path: Path) -> None:
    # Relative paths are held from the current folder: a run elsewhere must not reuse them.
    path = project(tmp_path, '[content]\nroot = "docs"\n')
    assert load_settings(path, cwd=tmp_path / "proj").content.root == Path("docs")
    assert load_settings(path, cwd=tmp_path).content.root == Path("proj/docs")
    elsewhere = tmp_path / "elsewhere"
    assert load_settings(path, cwd=elsewhere).content.root == tmp_path / "proj" / "docs"


def test_other_code_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = project(tmp_path, "[review]\ndue_soon_days = 10\n")
    key = settings_cache.key(path, path.read_bytes(), tmp_path)
    assert key == settings_cache.key(path, path.read_bytes(), tmp_path)
    monkeypatch.setattr(settings_cache, "__version__", "0.0.0-other")
    assert settings_cache.key(path, path.read_bytes(), tmp_path) != key
    monkeypatch.undo()
    # a library upgraded (its main module changed) changes the key too
    library = tmp_path / "lib" / "fakelib"
    write_doc(library / "__init__.py", "VERSION = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    monkeypatch.setattr(settings_cache, "LIBRARIES", ("fakelib",))
    first = settings_cache.key(path, path.read_bytes(), tmp_path)
    write_doc(library / "__init__.py", "VERSION = 22\n")
    assert settings_cache.key(path, path.read_bytes(), tmp_path) != first


def test_the_code_fingerprint_covers_the_validating_modules() -> None:
    modules = {entry[0] for entry in settings_cache.code_fingerprint()[2]}
    for name in ("config.py", "config_schema.py", "rule_selection.py", "store/__init__.py"):
        assert name in modules
    assert os.path.join("content", "cadence.py") in modules  # noqa: PTH118


@pytest.mark.parametrize(
    "damage",
    [
        "not json at all",
        "truncated",
        "another format",
        "another key",
        "a section that does not exist",
        "a value of the wrong type",
        "settings that no longer hold",
        "a list at the top",
    ],
)
def test_a_damaged_or_foreign_cache_is_ignored_and_replaced(tmp_path: Path, damage: str) -> None:
    path = project(tmp_path)
    fresh = load_settings(path, cwd=tmp_path)
    where = cache_of(path)
    good = json.loads(where.read_text(encoding="utf-8"))
    text = json.dumps(good)
    bad = {
        "not json at all": "\x00\xff garbage",
        "truncated": text[: len(text) // 2],
        "another format": json.dumps(good | {"format": 999}),
        "another key": json.dumps(good | {"key": "0" * 64}),
        "a section that does not exist": text.replace('"ReviewSettings"', '"Nope"'),
        "a value of the wrong type": text.replace('{"path": "proj/docs"}', '{"path": 7}'),
        # a time zone tzdata does not have: rebuilding the settings checks it again
        "settings that no longer hold": text.replace('"Europe/London"', '"Mars/Olympus"'),
        "a list at the top": "[1, 2]",
    }[damage]
    assert bad != text
    where.write_text(bad, encoding="utf-8", errors="surrogateescape")
    assert settings_cache.read(where, good["key"], SECTION_CLASSES) is None
    assert load_settings(path, cwd=tmp_path) == fresh
    rewritten = json.loads(where.read_text(encoding="utf-8"))
    assert rewritten == good
    assert settings_cache.read(where, good["key"], SECTION_CLASSES) == fresh


def test_a_cache_that_cannot_be_written_or_read_is_skipped(tmp_path: Path) -> None:
    path = project(tmp_path)
    where = cache_of(path)
    where.mkdir()  # a folder in the file's place: neither readable nor replaceable as a file
    first = load_settings(path, cwd=tmp_path)
    assert load_settings(path, cwd=tmp_path) == first
    assert where.is_dir() and [p.name for p in where.parent.iterdir()] == [
        where.name
    ]  # no temporary left


def test_a_read_only_folder_works(tmp_path: Path) -> None:
    path = project(tmp_path)
    fresh = load_settings(path, cwd=tmp_path)  # written while it could be
    folder = cache_of(path).parent
    folder.chmod(0o500)
    try:
        path.write_text(FULL + "\n# changed\n", encoding="utf-8")
        assert load_settings(path, cwd=tmp_path) == fresh  # a miss, validated; not written
        assert load_settings(path, cwd=tmp_path) == fresh
        assert [p.name for p in folder.iterdir()] == [settings_cache.FILE_NAME]
    finally:
        folder.chmod(0o700)


def test_no_state_folder_no_cache(tmp_path: Path) -> None:
    # The cache sits in the state store's folder, which a run that uses the store makes.
    path = write_doc(tmp_path / "c.toml", "[review]\ndue_soon_days = 3\n")
    assert load_settings(path, cwd=tmp_path).review.due_soon_days == 3
    assert not (tmp_path / ".review-scheduler").exists()


def test_an_environment_variable_bypasses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project(tmp_path, "[review]\ndue_soon_days = 10\n")
    assert load_settings(path, cwd=tmp_path).review.due_soon_days == 10  # cached
    before = cache_of(path).read_bytes()
    monkeypatch.setenv("SCHEDULER_REVIEW__DUE_SOON_DAYS", "5")
    monkeypatch.setenv("SCHEDULER_SMTP__PASSWORD", "hunter2-never-on-disk")
    monkeypatch.setenv("SCHEDULER_SMTP__HOST", "localhost")
    settings = load_settings(path, cwd=tmp_path)
    assert settings.review.due_soon_days == 5
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "hunter2-never-on-disk"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.smtp.password)
    assert cache_of(path).read_bytes() == before  # neither used nor written
    for file in (tmp_path / "proj").rglob("*"):
        if file.is_file():
            assert b"hunter2" not in file.read_bytes(), file


def test_settings_holding_a_password_are_never_written(tmp_path: Path) -> None:
    from scheduler.config_schema import Secret

    (tmp_path / "state").mkdir()
    where = tmp_path / "state" / "settings-cache.json"
    secret = Secret("hunter2-never-on-disk")
    settings = validated(Settings, {"smtp": {"host": "localhost", "password": secret}})
    settings_cache.write(where, "k", settings)
    assert list((tmp_path / "state").iterdir()) == []


WRITER = """
import sys
from pathlib import Path
from scheduler import settings_cache
from scheduler.config import load_settings
path, rounds = Path(sys.argv[1]), int(sys.argv[2])
settings = load_settings(path, cwd=path.parent)
where = settings_cache.cache_file(path.parent)
key = settings_cache.key(path, path.read_bytes(), path.parent)
for _ in range(rounds):
    settings_cache.write(where, key, settings)
print("done")
"""


def test_two_processes_writing_at_once_leave_a_valid_file(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    (folder / ".review-scheduler").mkdir(parents=True)
    path = write_doc(folder / "review-scheduler.toml", FULL)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), "300"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for writer in writers:
        out, _ = writer.communicate(timeout=120)
        assert (writer.returncode, out) == (0, "done\n")
    where = settings_cache.cache_file(folder)
    key = settings_cache.key(path, path.read_bytes(), folder)
    assert settings_cache.read(where, key, SECTION_CLASSES) == config._validate(path, folder)
    assert [p.name for p in where.parent.iterdir()] == [
        settings_cache.FILE_NAME
    ]  # no temporary left


def test_the_file_holds_values_not_code(tmp_path: Path) -> None:
    path = project(tmp_path)
    load_settings(path, cwd=tmp_path)
    stored = json.loads(cache_of(path).read_text(encoding="utf-8"))
    assert set(stored) == {"format", "key", "settings"}
    with pytest.raises(ValueError, match="not kept"):
        settings_cache.encode(object())
    with pytest.raises(KeyError):  # only the settings' own dataclasses are made
        settings_cache.decode({"section": "Popen", "fields": {}}, SECTION_CLASSES)


def test_a_time_zone_that_is_a_folder_of_tzdata_is_a_config_error(tmp_path: Path) -> None:
    path = project(tmp_path, '[review]\ntimezone = "America"\n')
    with pytest.raises(ConfigError, match="timezone: unknown IANA time zone 'America'"):
        load_settings(path, cwd=tmp_path)


def test_a_pyproject_table_is_cached_by_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".review-scheduler").mkdir()
    path = write_doc(
        tmp_path / "pyproject.toml",
        '[project]\nname = "docs"\n[tool.review-scheduler.review]\ndue_soon_days = 12\n',
    )
    fresh = load_settings(path, cwd=tmp_path)
    assert fresh.review.due_soon_days == 12 and cache_of(path).is_file()
    table = json.dumps({"review": {"due_soon_days": 12}}, sort_keys=True).encode()
    stored = json.loads(cache_of(path).read_text(encoding="utf-8"))
    assert stored["key"] == settings_cache.key(path, table, tmp_path)
    with monkeypatch.context() as patched:
        no_validation(patched)
        assert load_settings(path, cwd=tmp_path) == fresh
    path.write_text(
        '[project]\nname = "docs"\n[tool.review-scheduler.review]\ndue_soon_days = 13\n',
        encoding="utf-8",
    )
    assert load_settings(path, cwd=tmp_path).review.due_soon_days == 13
