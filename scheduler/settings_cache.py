"""The validated-settings cache: a config that validated once is not validated again.

Validating a config means importing pydantic and building its validators, which costs a short
command most of its start-up. After a successful validation the settings are written, as JSON,
to ``.review-scheduler/settings-cache.json`` in the config's folder (beside the default state
store), under a key made of:

* the config file: its absolute path, its bytes (for a ``pyproject.toml``, its
  ``[tool.review-scheduler]`` table) and its identity on disk (device, inode, modification
  time), so that a cache that arrived with a cloned repository never matches;
* the current folder, which relative paths are held from;
* the code that validates: the tool's version, the Python version, and the size and
  modification time of every module of the tool and of the libraries its checks call
  (pydantic, pydantic-core, APScheduler).

A later run whose key matches rebuilds the settings from the file instead of validating. The
rebuilt settings run their ``__post_init__`` checks, among them those that depend on the machine
rather than on the file (the time zone existing in tzdata), so those hold on a hit too.

The cache is never used while a ``SCHEDULER_`` variable is set (the caller sees to that), so no
password reaches the disk, and settings holding one are never written. It is only an
optimisation: a file that is missing, damaged, truncated, from another version, or written by
a concurrent run is a miss, and a folder that cannot be written is skipped; neither fails a
command. The file holds values, never code: it is decoded by walking the settings' dataclasses,
not unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from scheduler import __version__

FILE_NAME = "settings-cache.json"
FORMAT = 1
# The libraries whose code the settings' checks run.
LIBRARIES = ("pydantic", "pydantic_core", "apscheduler")
_PACKAGE = Path(__file__).resolve().parent


def cache_file(config_base: Path) -> Path:
    """Where the cache of the config whose paths are taken from ``config_base`` is kept."""
    return config_base / ".review-scheduler" / FILE_NAME


def code_fingerprint() -> list[Any]:
    """What changes when the code that validates the settings may have changed."""
    modules: list[Any] = []
    for folder, _, files in os.walk(_PACKAGE):
        for name in files:
            if name.endswith(".py"):
                stat = os.stat(os.path.join(folder, name))  # noqa: PTH116, PTH118
                place = os.path.relpath(os.path.join(folder, name), _PACKAGE)  # noqa: PTH118
                modules.append([place, stat.st_size, stat.st_mtime_ns])
    return [__version__, sys.version, sorted(modules), library_stamps(LIBRARIES)]


def library_stamps(names: tuple[str, ...]) -> list[Any]:
    """Where each of the libraries ``names`` is installed, with its main module's size and
    modification time: changes when one is upgraded, found without importing them (asking
    the installed metadata for versions costs a scan of sys.path)."""
    stamps: list[Any] = []
    for name in names:
        spec = find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None:
            stamps.append([name, None])
            continue
        stat = os.stat(origin)  # noqa: PTH116
        stamps.append([name, origin, stat.st_size, stat.st_mtime_ns])
    return stamps


def key(config: Path, source: bytes, cwd: Path) -> str:
    """The cache key of the settings loaded from ``config`` (whose relevant bytes are
    ``source``) in the folder ``cwd``."""
    absolute = os.path.abspath(config)  # noqa: PTH100
    stat = os.stat(absolute)  # noqa: PTH116
    digest = hashlib.sha256()
    identity = [
        FORMAT,
        absolute,
        [stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size],
        os.path.abspath(cwd),  # noqa: PTH100
        code_fingerprint(),
    ]
    digest.update(json.dumps(identity).encode())
    digest.update(b"\0")
    digest.update(source)
    return digest.hexdigest()


def read(path: Path, wanted: str, classes: dict[str, type]) -> Any:
    """The settings cached at ``path`` under the key ``wanted``, or None (a miss)."""
    try:
        with path.open("rb") as handle:
            stored = json.load(handle)
        if not isinstance(stored, dict) or stored.get("format") != FORMAT:
            return None
        if stored.get("key") != wanted:
            return None
        return decode(stored["settings"], classes)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        # unreadable, not JSON, not our layout, or settings that no longer hold
        return None


def write(path: Path, written: str, settings: object) -> None:
    """Keep ``settings`` at ``path`` under the key ``written``: atomically (a reader sees the
    old file or the new one), and only if it can; a failure is not an error. The folder is not
    made here: it is the state store's, made by a run that uses the store (one with
    ``--no-cache``, or ``validate``, leaves no folder behind)."""
    try:
        encoded = encode(settings)
    except ValueError:
        return  # holds a password, or something the decoder would not rebuild
    text = json.dumps({"format": FORMAT, "key": written, "settings": encoded}, sort_keys=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as handle:
            handle.write(text)
        temporary.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def encode(value: object) -> Any:
    """``value`` as JSON: every container is tagged with what it was, so that :func:`decode`
    rebuilds the same settings. Raises ValueError for what it does not keep."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"tuple": [encode(item) for item in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("a table with keys that are not strings")
        return {"dict": {k: encode(v) for k, v in value.items()}}
    if isinstance(value, Path):
        return {"path": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"section": type(value).__name__, "fields": fields}
    raise ValueError(f"not kept in the settings cache: {type(value).__name__}")


def decode(data: Any, classes: dict[str, type]) -> Any:
    """What :func:`encode` wrote, rebuilt; the settings' dataclasses are made by their own
    constructors (``classes``, by name), so that their ``__post_init__`` checks run. Raises
    ValueError, TypeError or KeyError for anything else."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise ValueError("not an encoded value")
    if "tuple" in data and len(data) == 1:
        return tuple(decode(item, classes) for item in _list(data["tuple"]))
    if "dict" in data and len(data) == 1:
        return {str(k): decode(v, classes) for k, v in _dict(data["dict"]).items()}
    if "path" in data and len(data) == 1 and isinstance(data["path"], str):
        return Path(data["path"])
    if set(data) == {"section", "fields"}:
        cls = classes[data["section"]]
        return cls(**{k: decode(v, classes) for k, v in _dict(data["fields"]).items()})
    raise ValueError("not an encoded value")


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("not a table")
    return value
