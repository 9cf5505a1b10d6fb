"""The supervisor's view of the stack, published in Redis for ``/healthz`` and the console.

``up`` runs the :class:`~watchfloor.supervisor.Supervisor` in its own process,
which has no HTTP server; so every few seconds (and on every change) it writes
its :meth:`~watchfloor.supervisor.Supervisor.status` to ``keys.SUPERVISOR``
(msgpack, with a TTL: a key left by a killed ``up`` expires), which the API's
``/healthz`` turns into problems. A child that has been in a crash loop also
gets a row on the health board (``process:<name>``, down while it loops, up once
it recovered), which the console's health strip shows like any component.
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgpack

from watchfloor.core import keys
from watchfloor.core.changes import change_fields
from watchfloor.core.redis_client import connect_sync

STATUS_TTL_S: Final = 30
"""Seconds the published status lives unless refreshed (``up`` refreshes every 5 s)."""


class StatusPublisher:
    """``publish(status)`` for the supervisor: writes ``keys.SUPERVISOR`` and health rows."""

    def __init__(self, url: str, *, changes_maxlen: int = 100_000) -> None:
        self._redis = connect_sync(url, socket_timeout=2, socket_connect_timeout=2)
        self._maxlen = changes_maxlen
        self._rows: dict[str, str] = {}
        """Health-board status last written per child that has looped."""

    def __call__(self, status: dict[str, Any]) -> None:
        self._redis.set(keys.SUPERVISOR, msgpack.packb(status, use_bin_type=True), ex=STATUS_TTL_S)
        for name, child in status.get("children", {}).items():
            self._health_row(name, child)

    def _health_row(self, name: str, child: dict[str, Any]) -> None:
        looping = child.get("state") == "crash-loop"
        if not looping and name not in self._rows:
            return  # only a child that looped gets a row: the board stays about the business
        state = "down" if looping else "up"
        row = {
            "subject": f"process:{name}",
            "kind": "process",
            "status": state,
            "latency_ms": None,
            "error_rate": None,
            "message": _message(name, child) if looping else "recovered",
            "updated_at": time.time(),
            "last_seen": time.time(),
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.HEALTH, row["subject"], msgpack.packb(row, use_bin_type=True))
        if self._rows.get(name) != state:
            pipe.xadd(keys.CHANGES, change_fields("health", "updated", row), maxlen=self._maxlen)
        pipe.execute()
        self._rows[name] = state

    def close(self) -> None:
        """Remove what only a running ``up`` may claim, then close the client."""
        try:
            self._redis.delete(keys.SUPERVISOR)
            for name in self._rows:
                subject = f"process:{name}"
                self._redis.hdel(keys.HEALTH, subject)
                data = {"subject": subject, "kind": "process"}
                self._redis.xadd(keys.CHANGES, change_fields("health", "deleted", data))
        finally:
            self._redis.close()


def _message(name: str, child: dict[str, Any]) -> str:
    last = (child.get("last_output") or [""])[-1]
    return f"{name} crash loop: {child.get('recent_exits')} exits; {last}"[:300]
