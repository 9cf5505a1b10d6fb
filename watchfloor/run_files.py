"""``DATA_DIR/run/``: how commands find the running stack's processes.

``watchfloor up`` writes its pid to ``run/up.pid`` while it runs (and removes it
when it stops); ``watchfloor reload`` signals that pid. Beside it, ``run/stack.json``
says where that stack's collector and API listen (they may differ from the config:
``--collector-port``), for ``doctor`` and ``console`` run beside it. A pid file left by a
killed ``up`` is recognised as stale: the pid is dead, or no longer a
``watchfloor`` process (pids are reused). Without a pid file, the owner of the
embedded Redis (:mod:`core.stack_lock`: ``up``, or a standalone ``monitor``) is
the stack.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from watchfloor.core.config import Config
from watchfloor.core.stack_lock import read_holder

PID_FILE = "up.pid"
ADDRESSES_FILE = "stack.json"


def run_dir(config: Config) -> Path:
    return config.path("run")


def write_pid(config: Config) -> Path:
    directory = run_dir(config)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / PID_FILE
    temporary = directory / (PID_FILE + ".tmp")
    temporary.write_text(f"{os.getpid()}\n", encoding="utf-8")
    temporary.replace(path)
    return path


def write_addresses(config: Config) -> Path:
    """Where this stack's services listen (``run/stack.json``), next to its pid."""
    directory = run_dir(config)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {
        "pid": os.getpid(),
        "collector": [config.collector.host, config.collector.port],
        "api": [config.api.host, config.api.port],
    }
    temporary = directory / (ADDRESSES_FILE + ".tmp")
    temporary.write_text(json.dumps(body) + "\n", encoding="utf-8")
    temporary.replace(directory / ADDRESSES_FILE)
    return directory / ADDRESSES_FILE


def stack_addresses(config: Config) -> dict[str, tuple[str, int]]:
    """``{"collector": (host, port), "api": (host, port)}`` of the running ``up``, or ``{}``."""
    try:
        body = json.loads((run_dir(config) / ADDRESSES_FILE).read_text(encoding="utf-8"))
        pid = int(body["pid"])
        found = {name: (str(body[name][0]), int(body[name][1])) for name in ("collector", "api")}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}
    return found if is_watchfloor(pid) else {}


def remove_pid(config: Config) -> None:
    for name in (PID_FILE, ADDRESSES_FILE):
        path = run_dir(config) / name
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            text = path.read_text(encoding="utf-8")
            pid = json.loads(text)["pid"] if name == ADDRESSES_FILE else int(text)
            if int(pid) == os.getpid():
                path.unlink()  # only our own: a newer `up` may have replaced it


def running_stack(config: Config) -> int | None:
    """The pid of the running ``up`` (or the Redis owner without one), else ``None``."""
    try:
        pid = int((run_dir(config) / PID_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pid = None
    if pid is not None and is_watchfloor(pid):
        return pid
    holder = read_holder(config.path("redis"))
    return holder.pid if holder is not None and holder.long_lived else None


def is_watchfloor(pid: int) -> bool:
    """Whether ``pid`` runs and is a ``watchfloor`` command (not a reused pid).

    Read from ``/proc`` (Linux, like the rest of ``up``'s process handling); where
    there is none, the stack lock's own liveness check decides.
    """
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"watchfloor" in part for part in argv[:4])
