"""The field registry: config names, the metadata model, facts and report columns derive from it."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import date
from pathlib import Path

import pytest

from scheduler.config import ConfigError, FieldNames, MetadataRules, load_settings, validated
from scheduler.content.facts import DocumentFacts, FactsDecoder, encode_facts
from scheduler.content.fields import FIELDS, NAMES, REPORTED
from scheduler.content.metadata_model import Metadata
from scheduler.content.reading import ReadingSettings
from scheduler.render.check import document_json
from scheduler.results import DocumentReport, State
from scheduler.rules import INVALID

from .conftest import write_doc


def test_config_field_names_come_from_the_registry() -> None:
    names = dataclasses.asdict(FieldNames())  # type: ignore[call-overload]
    assert names == {field.name: field.key for field in FIELDS}
    assert FieldNames().key("last_reviewed") == "lastReviewed"


def test_a_field_key_is_set_by_file_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_doc(tmp_path / "c.toml", '[fields]\nlast_reviewed = "reviewed_on"\n')
    assert load_settings(config).fields.key("last_reviewed") == "reviewed_on"
    monkeypatch.setenv("SCHEDULER_FIELDS__OWNER", "maintainer")
    assert load_settings(config).fields.key("owner") == "maintainer"


def test_an_unknown_field_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    config = write_doc(tmp_path / "c.toml", '[fields]\nlast_reviwed = "x"\n')
    with pytest.raises(ConfigError, match="did you mean 'last_reviewed'"):
        load_settings(config)
    with pytest.raises(ValueError, match="'titel' \\(did you mean 'title'\\?\\)"):
        validated(MetadataRules, {"recommended": ["titel"]})


def test_the_metadata_model_has_one_field_per_entry() -> None:
    assert tuple(Metadata.model_fields) == NAMES
    meta = Metadata(title="  A page ", owner="ed@example.org")
    assert meta.value("title") == "A page" and meta.value("owner") == ("ed@example.org",)


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_each_field_has_its_own_rule_for_values_it_cannot_read(field: object) -> None:
    from pydantic import ValidationError

    name = field.name  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as caught:
        Metadata.model_validate({name: {"a": "mapping"}})
    assert caught.value.errors()[0]["loc"] == (name,)
    assert INVALID[name].code == field.code  # type: ignore[attr-defined]


def test_report_columns_follow_the_registry() -> None:
    assert [f.name for f in REPORTED] == ["title", "last_reviewed", "review_frequency", "status"]


def test_further_reported_fields_travel_in_facts_and_appear_after_the_frequency() -> None:
    facts = DocumentFacts(
        title="T",
        status="active",
        last_reviewed=date(2026, 1, 1),
        review_frequency="quarterly",
        due=date(2026, 4, 1),
        shown=(("language", "en"), ("tags", ["a", "b"])),
    )
    decoded = FactsDecoder().facts(encode_facts(facts), "p.md")
    assert decoded == facts
    doc = DocumentReport(
        path="p.md",
        title="T",
        state=State.OK,
        status="active",
        last_reviewed=date(2026, 1, 1),
        review_frequency="quarterly",
        due=date(2026, 4, 1),
        days_until_due=40,
        editors=(),
        problems=(),
        shown=decoded.shown,
    )
    line = document_json(doc)
    assert line == json.dumps(doc.to_json(), ensure_ascii=False)
    assert list(json.loads(line)) == [
        "path",
        "title",
        "state",
        "status",
        "last_reviewed",
        "review_frequency",
        "language",
        "tags",
        "due",
        "days_until_due",
        "editors",
        "problems",
    ]


def test_workers_are_sent_the_reading_settings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_SMTP__PASSWORD", "hunter2-secret")
    settings = load_settings(None)  # reads the environment (Settings() alone does not)
    assert settings.smtp.password is not None
    sent = pickle.dumps(ReadingSettings.of(settings))
    assert b"hunter2-secret" not in sent and b"smtp" not in sent
    assert pickle.loads(sent).names.key("title") == "title"  # noqa: S301 - our own bytes
