"""Who owns a data directory's Redis: a lock file held for the owner's lifetime.

The process that starts the embedded Redis of ``DATA_DIR/redis`` holds
``DATA_DIR/redis/owner.lock`` with ``fcntl.flock`` until it stops that Redis,
and writes into it its pid, the Redis URL and whether it is a long-lived stack
(``watchfloor up``, a standalone ``monitor`` or ``collector``) or a one-shot
command. The kernel drops a flock when its holder dies, however it dies, so a
lock left by a killed process is never mistaken for a live one: the file's
content only counts while someone holds the lock. Other processes read it to
use the running stack's Redis instead of starting a second server on the same
append-only file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "owner.lock"


@dataclass(frozen=True, slots=True)
class Holder:
    """The live owner of a data directory's Redis, as it described itself."""

    pid: int
    url: str
    long_lived: bool


def lock_path(redis_dir: str | Path) -> Path:
    return Path(redis_dir) / LOCK_NAME


class OwnerLock:
    """An exclusive, non-blocking flock on ``redis_dir/owner.lock``."""

    def __init__(self, redis_dir: str | Path) -> None:
        self.path = lock_path(redis_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock; ``False`` if another open file (any process) holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def publish(self, url: str, *, long_lived: bool) -> None:
        """Say who holds the lock and where its Redis answers."""
        if self._fd is None:
            raise RuntimeError("publish() needs the lock")
        data = json.dumps({"pid": os.getpid(), "url": url, "long_lived": long_lived})
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data.encode(), 0)
        os.fsync(self._fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # a reader never sees a dead owner's URL
        os.close(fd)  # closing the last descriptor drops the flock


def is_locked(redis_dir: str | Path) -> bool:
    """Whether some open file holds the lock (probed without keeping it)."""
    probe = OwnerLock(redis_dir)
    if not probe.path.exists():
        return False
    if probe.acquire():
        # Free: close without truncating, in case the owner is starting right now.
        fd, probe._fd = probe._fd, None
        if fd is not None:
            os.close(fd)
        return False
    return True


def read_holder(redis_dir: str | Path) -> Holder | None:
    """The live owner, or ``None`` when the lock is free or its owner is still starting."""
    if not is_locked(redis_dir):
        return None
    try:
        raw = json.loads(lock_path(redis_dir).read_text(encoding="utf-8") or "null")
        holder = Holder(int(raw["pid"]), str(raw["url"]), bool(raw["long_lived"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None  # locked but not yet published: the owner is starting
    return holder if _alive(holder.pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
