"""The systemd unit in config/: what it must say, and systemd's own verdict on it (verify, and
the exposure of ``systemd-analyze security``, which must stay at 4 or less)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .conftest import REPO

UNIT = REPO / "config" / "review-scheduler.service"


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze is missing: apt-get install systemd (.ci/run does)"
    return tool


def test_the_unit_keeps_state_logs_and_exit_codes_right() -> None:
    unit = settings()
    assert unit["StateDirectory"] == ["review-scheduler"]
    assert unit["LogsDirectory"] == ["review-scheduler"]
    assert unit["RestartPreventExitStatus"] == ["2"]
    assert unit["Restart"] == ["on-failure"]
    environment = unit["Environment"]
    assert "SCHEDULER_STORE__URL=sqlite:////var/lib/review-scheduler/state.sqlite3" in environment
    assert "SCHEDULER_MAIL__OUTBOX_DIR=/var/lib/review-scheduler/outbox" in environment
    for key, value in {
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "SystemCallFilter": "@system-service",
        "SystemCallArchitectures": "native",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "UMask": "0077",
        "ProtectSystem": "strict",
        "ProtectProc": "invisible",
        "ProcSubset": "pid",
    }.items():
        assert unit[key] == [value], key
    for flag in (
        "NoNewPrivileges",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectHome",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectClock",
        "ProtectHostname",
        "LockPersonality",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "MemoryDenyWriteExecute",
    ):
        assert unit[flag] == ["yes"], flag
    assert "User" in unit or unit.get("DynamicUser") == ["yes"]
    # the daemon's defaults end well inside the stop timeout
    assert int(unit["TimeoutStopSec"][0]) > 60  # [daemon] shutdown_grace_seconds


def _installed_copy(tmp_path: Path) -> Path:
    """The unit as installed: its ExecStart pointing at a program that exists here."""
    program = shutil.which("review-scheduler") or shutil.which("true")
    assert program is not None
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={program}", UNIT.read_text())
    copy = tmp_path / "review-scheduler.service"
    copy.write_text(text)
    return copy


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    result = subprocess.run(
        [analyze(), "verify", str(_installed_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "review-scheduler.service" not in result.stderr, result.stderr  # no complaints


def test_the_exposure_is_4_or_less(tmp_path: Path) -> None:
    result = subprocess.run(
        [analyze(), "security", "--offline=yes", "--no-pager", str(_installed_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) <= 4.0, result.stdout
