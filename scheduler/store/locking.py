"""Locks on files beside the state store, released by the system when their holder dies: the
daemon lock (one daemon per store) and the cycle mark (held, shared, by every running cycle).

``flock`` where the platform has ``fcntl``, ``msvcrt.locking`` on Windows. The modules are
imported when a lock is taken, so the package, ``check-reviews`` and the other one-off commands
run on any platform.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from scheduler.errors import StoreError

# Windows locks a byte range and keeps others from reading it: lock a byte far past the process
# id written at the start of the file, so that others can still read who holds the lock.
_WINDOWS_REGION = 1 << 30


def _try_lock(fd: int, *, exclusive: bool) -> bool:
    """Take the lock on ``fd`` without waiting; whether it was free."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WINDOWS_REGION, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        import fcntl
    except ImportError:
        raise StoreError(
            "this platform offers no file locking (neither fcntl nor msvcrt), which the daemon "
            "needs to be sure it runs alone"
        ) from None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WINDOWS_REGION, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


Advice = Callable[[OSError], str]  # what to do about a failure, for messages


def _no_advice(exc: OSError) -> str:
    return "check [store] url and the folder it names"


class FileLock:
    """An exclusive lock on a file, which holds the holder's process id for messages."""

    def __init__(self, path: Path, shown: str, advice: Advice = _no_advice) -> None:
        self.path = path
        self.shown = shown
        self.advice = advice
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot lock the state store {self.shown}: {exc}") from exc
        try:
            taken = _try_lock(fd, exclusive=True)
        except BaseException:
            os.close(fd)
            raise
        if not taken:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise StoreError(
                f"another review-scheduler daemon{who} is already running on the state store "
                f"{self.shown}; stop it first, or give this one another [store] url"
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def ensure_held(self) -> None:
        """A :class:`StoreError` unless this process holds the lock on the file now at the
        path (not on one deleted or replaced since it was taken)."""
        if self._fd is None:
            raise StoreError(f"this process does not hold the lock on the state store {self.shown}")
        held = os.fstat(self._fd)
        try:
            there = self.path.stat()
        except OSError:
            there = None
        if there is None or (there.st_dev, there.st_ino) != (held.st_dev, held.st_ino):
            raise StoreError(
                f"the lock file {self.path.name} of the state store {self.shown} was deleted or "
                "replaced while in use, so another daemon could start beside this one; stopping"
            )

    def holder(self) -> int | None:
        """The process id of the holder (-1 when it cannot be read), or ``None`` if free."""
        try:
            fd = os.open(self.path, os.O_RDONLY if sys.platform != "win32" else os.O_RDWR)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(
                f"cannot read the daemon lock beside the state store {self.shown}: "
                f"{exc.strerror}; {self.advice(exc)}"
            ) from exc
        try:
            if not _try_lock(fd, exclusive=False):
                return _read_pid(fd) or -1
            _unlock(fd)
            return None
        finally:
            os.close(fd)


class CycleMarker:
    """A shared lock held by every process while it runs a cycle: live ones hold it, the
    system drops a dead one's. Whoever can take it exclusively knows no cycle runs.

    Where there are only exclusive locks (Windows, ``msvcrt``) or none, cycles are not marked
    and :meth:`held_elsewhere` cannot tell: it says no."""

    def __init__(self, path: Path, shown: str, advice: Advice = _no_advice) -> None:
        self.path = path
        self.shown = shown
        self.advice = advice
        self._fd: int | None = None

    def acquire(self) -> None:
        fcntl = _fcntl()
        if fcntl is None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_SH)  # only status's brief exclusive probe can block it
        except OSError as exc:
            raise StoreError(
                f"cannot mark a cycle running beside the state store {self.shown}: "
                f"{exc.strerror}; {self.advice(exc)}"
            ) from exc
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the lock
            self._fd = None

    def held_elsewhere(self) -> bool:
        fcntl = _fcntl()
        if fcntl is None:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(
                f"cannot read the cycle mark beside the state store {self.shown}: "
                f"{exc.strerror}; {self.advice(exc)}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


def _fcntl() -> ModuleType | None:
    """The ``fcntl`` module, or ``None`` on a platform without it."""
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
