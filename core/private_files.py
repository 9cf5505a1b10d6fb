"""Private files and directories of the data directory, made without the ``security`` package.

``core`` imports nothing of ours, yet the embedded Redis needs a 0700 directory
and its password file (0600) before any service runs: these two helpers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from watchfloor.core.redis_client import read_secret


def make_private_dir(path: Path) -> None:
    """``path`` (and missing parents) with mode 0700, tightened if it already exists."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def ensure_secret(path: Path) -> str:
    """The Redis password kept in ``path`` (0600), generated the first time."""
    if not path.exists():
        make_private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # two first starts: the first one wins
            os.link(tmp, path)
        tmp.unlink()
    return read_secret(path)
