"""The PostgreSQL store's own concerns, against a real server: where its password comes from
(never the file or the URL), migrations under a lock, and clear errors."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import StoreSettings, load_settings
from scheduler.errors import ConfigError, StoreError
from scheduler.notify.channel import Notification
from scheduler.notify.reminders import LedgerEntry
from scheduler.review.state import State
from scheduler.store import LogEntry, LogKind, Queued, Seen, open_store, store_exists
from scheduler.store.postgres import STEPS

from .conftest import frontmatter, write_doc
from .pg_server import PASSWORD_ROLE, PgCluster

SECRET = "pw-secret-5b8e"  # PASSWORD_ROLE's, set by the cluster


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ed:hunter2@db.example.org/reviews",
        "postgres://ed:hunter2@db.example.org/reviews",
        "postgresql://ed@db.example.org/reviews?password=hunter2",
    ],
)
def test_a_password_in_the_url_is_refused(tmp_path: Path, url: str) -> None:
    config = write(tmp_path / "c.toml", f'[store]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "[store] url: must not hold a password" in message
    assert "SCHEDULER_STORE__PASSWORD" in message
    assert "hunter2" not in message


def test_a_password_in_the_file_is_refused(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml", '[store]\nurl = "postgresql://ed@db/reviews"\npassword = "hunter2"\n'
    )
    with pytest.raises(ConfigError, match=r"\[store\] password must not be written in a config"):
        load_settings(config)


def test_the_password_comes_from_the_environment(
    tmp_path: Path, pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_cluster.url(pg_cluster.database(owner=PASSWORD_ROLE), user=PASSWORD_ROLE)
    config = write(tmp_path / "c.toml", f'[store]\nurl = "{url}"\n')
    with pytest.raises(StoreError, match=r"password authentication failed|no password supplied"):
        open_store(load_settings(config).store, tmp_path)
    monkeypatch.setenv("SCHEDULER_STORE__PASSWORD", "wrong")
    with pytest.raises(StoreError, match="password authentication failed") as caught:
        open_store(load_settings(config).store, tmp_path)
    assert "wrong" not in str(caught.value)
    monkeypatch.setenv("SCHEDULER_STORE__PASSWORD", SECRET)
    settings = load_settings(config).store
    assert SECRET not in repr(settings)
    with open_store(settings, tmp_path) as store:
        assert store.outbox.counts() == {"pending": 0, "sent": 0, "failed": 0, "unconfirmed": 0}


def test_libpq_password_file_applies_without_one_from_us(
    tmp_path: Path, pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_cluster.url(pg_cluster.database(owner=PASSWORD_ROLE), user=PASSWORD_ROLE)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"*:*:*:{PASSWORD_ROLE}:{SECRET}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with open_store(StoreSettings(url=url), tmp_path) as store:
        assert store.runs.last("cycle") is None


def test_an_unreachable_server_is_a_clear_store_error(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/none?host={tmp_path}&port=5999"
    with pytest.raises(StoreError, match=r"cannot reach the state store postgresql://nobody@"):
        store_exists(StoreSettings(url=url), tmp_path)
    with pytest.raises(StoreError, match=r"cannot open the state store postgresql://nobody@"):
        open_store(StoreSettings(url=url), tmp_path)


def test_daemons_starting_together_migrate_once(tmp_path: Path, pg_cluster: PgCluster) -> None:
    settings = StoreSettings(url=pg_cluster.url(pg_cluster.database()))
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(settings, tmp_path).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    name = settings.url.split("/")[3].split("?")[0]
    assert pg_cluster.psql("SELECT component, version FROM schema_steps", name).split() == [
        f"store|{len(STEPS)}"
    ]


def test_a_newer_schema_is_refused(tmp_path: Path, pg_cluster: PgCluster) -> None:
    name = pg_cluster.database()
    settings = StoreSettings(url=pg_cluster.url(name))
    open_store(settings, tmp_path).close()
    pg_cluster.psql("UPDATE schema_steps SET version = version + 1", name)
    with pytest.raises(StoreError, match="written by a newer review-scheduler"):
        open_store(settings, tmp_path)


@pytest.mark.parametrize("in_postgres", [False, True])
def test_where_the_parse_cache_is_kept(
    tmp_path: Path,
    pg_cluster: PgCluster,
    run: Any,
    monkeypatch: pytest.MonkeyPatch,
    in_postgres: bool,
) -> None:
    """By default each host keeps its own parse cache in a local file (it caches that host's
    files); ``cache_url`` may put it in PostgreSQL."""
    name = pg_cluster.database()
    url = pg_cluster.url(name)
    write_doc(tmp_path / "docs" / "a.md", frontmatter(title="A"))
    write_doc(tmp_path / "docs" / "b.md", frontmatter(title="B"))
    cache = f'cache_url = "{url}"\n' if in_postgres else ""
    config = write(
        tmp_path / "c.toml", f'[content]\nroot = "docs"\n[store]\nurl = "{url}"\n{cache}'
    )
    monkeypatch.chdir(tmp_path)
    args = ("check", "--config", str(config), "--as-of", "2026-05-01", "--format", "json")
    cold = run(*args, "--fail-on", "never")
    assert cold.code == 0, cold.err
    local = tmp_path / ".review-scheduler" / "parse-cache.sqlite3"
    if in_postgres:
        assert pg_cluster.psql("SELECT count(*) FROM parse_cache", name).strip() == "2"
        # with each JSON report entry kept after the facts (chr(31) between its parts)
        kept = "SELECT count(*) FROM parse_cache WHERE strpos(facts, chr(31)) > 0"
        assert pg_cluster.psql(kept, name).strip() == "2"
        assert not local.exists()
    else:
        assert pg_cluster.psql("SELECT to_regclass('parse_cache') IS NULL", name).strip() == "t"
        assert local.is_file()
    assert run(*args, "--fail-on", "never").out == cold.out  # warm: the same report
    cleared = run("cache", "clear", "--config", str(config))
    assert cleared.code == 0 and "2" in cleared.out


def test_a_transaction_counts_once_however_many_rows_it_writes(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """Were each statement counted, a cycle writing 100,000 ledger rows one statement at a time
    would update the generation's row as often (seconds, and a bloated table)."""
    settings = StoreSettings(url=pg_cluster.url(pg_cluster.database()))
    when = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    remember = tuple(
        LedgerEntry("ed@example.org", f"docs/{i}.md", None, State.OVERDUE, when.date())
        for i in range(500)
    )
    log = tuple(LogEntry(f"docs/{i}.md", LogKind.REMINDED, when) for i in range(500))
    notification = Notification(
        key="k1",
        channel="email",
        sender="reviews@example.org",
        sender_name="Reviews",
        to=("ed@example.org",),
        cc=(),
        subject="Reminder",
        text="text\n",
        html="<p>html</p>\n",
        headers=(),
    )
    with open_store(settings, tmp_path) as store:
        before, _ = store.settled.current()
        store.outbox.enqueue([Queued(notification, remember, log)], (), when)
        store.reviews.observe([Seen(f"docs/{i}.md", when.date(), None) for i in range(500)], [])
        after_bulk, _ = store.settled.current()
        assert after_bulk - before == 2  # two transactions
        # statements run one by one, in one transaction: counted once too
        with store.transaction() as conn:  # type: ignore[attr-defined]
            for i in range(3):
                conn.execute(
                    "UPDATE review_seen SET last_reviewed = '2026-06-01' WHERE path = %s",
                    (f"docs/{i}.md",),
                )
        assert store.settled.current()[0] == after_bulk + 1
        assert len(store.ledger.entries()) == 500 and len(store.reviews.entries()) == 500
    name = settings.url.split("/")[3].split("?")[0]
    pg_cluster.psql("DELETE FROM snoozes; INSERT INTO review_seen VALUES ('x', '2026-01-01')", name)
    with open_store(settings, tmp_path) as store:  # another session's one transaction
        assert store.settled.current()[0] == after_bulk + 2
