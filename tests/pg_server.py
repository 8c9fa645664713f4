"""A real, throwaway PostgreSQL cluster for tests: Debian's ``postgresql`` package, a cluster in
a temporary folder owned by an unprivileged user (PostgreSQL refuses to run as root), reached
over a Unix socket in that folder, removed at the end.

Where the server is not installed the tests fail with the reason: CI must run them (``.ci/run``
installs the package).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
OWNER = "postgres"  # the Debian package creates this user
PORT = 5432  # only names the socket file: the server listens on no TCP port
PASSWORD_ROLE = "pwuser"  # a role that must give a password (scram-sha-256)


class PgCluster:
    """A running cluster; :meth:`database` makes a fresh, empty database and returns its URL."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        try:
            self.user = pwd.getpwnam(OWNER) if os.geteuid() == 0 else None
        except KeyError:
            raise RuntimeError(
                f"PostgreSQL tests need the unprivileged user {OWNER!r} to run the server as "
                "(the Debian package creates it)"
            ) from None
        self.root = Path(tempfile.mkdtemp(prefix="rs-pg-", dir="/tmp"))  # short: a socket path
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "server.log"
        self._names = itertools.count()
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--locale=C",
        )  # fmt: skip
        hba = self.data / "pg_hba.conf"
        rules = f"local all {PASSWORD_ROLE} scram-sha-256\nlocal all all trust\n"
        self._write(hba, rules)
        self._write(
            self.data / "postgresql.auto.conf",
            f"listen_addresses = ''\nunix_socket_directories = '{self.socket_dir}'\n"
            f"port = {PORT}\nfsync = off\nfull_page_writes = off\nsynchronous_commit = off\n"
            "max_connections = 200\n",
        )
        self.start()
        self.psql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'pw-secret-5b8e'")

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def _run(self, tool: str, *args: str) -> str:
        command = [str(self.bin / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", OWNER, "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=self.root, timeout=120
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}{log}")
        return done.stdout

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run(
            "psql", "-h", str(self.socket_dir), "-p", str(PORT), "-U", "postgres", "-d", database,
            "-v", "ON_ERROR_STOP=1", "-Atc", sql,
        )  # fmt: skip

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port={PORT}"

    def database(self, owner: str = "postgres") -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def close(self) -> None:
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _bin_dir() -> Path:
    for candidate in PG_BIN_DIRS:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise RuntimeError(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): the PostgreSQL "
        "store cannot be tested; install Debian's postgresql package (apt-get install "
        "postgresql), as .ci/run does"
    )


@contextmanager
def running_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.close()
