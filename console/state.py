"""The board model the console keeps from the live feed: pure, no Textual, no I/O.

The API's ``/v1/live`` WebSocket sends one snapshot, then changes. This
module applies both to plain dictionaries and reports *what* changed (a
:class:`Dirty` set of keys per kind) so the screens update only the affected
rows. It also answers the questions the screens ask: which incidents are open,
in what order; how late a queue is against its channel's SLA; how old each
tile's data is and whether it must be shown as stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from watchfloor.core.vocabulary import (
    FINISHED_RUN_STATES,
    SATISFACTION_FLOOR,
    SATISFACTION_TARGET,
    SEVERITIES_WORST_FIRST,
    SLA_ANSWER_S,
)

SEVERITY_ORDER: Final = {s: i for i, s in enumerate(SEVERITIES_WORST_FIRST)}
DEFAULT_SLA_S: Final = SLA_ANSWER_S
"""Longest-wait threshold per channel when a queue row carries none (core.vocabulary)."""
SATISFACTION_MIN_RATINGS: Final = 20
"""Fewer ratings in the hour: the share is shown uncoloured (a few ratings are chance)."""
LINK_SILENT_S: Final = 15.0
"""No message (not even a ping, sent every 5 s) for this long: the link is not trusted."""
QUEUE_SORTS: Final = (
    "queue",
    "channel",
    "waiting",
    "longest_wait_s",
    "service_level",
    "abandon_rate",
    "agents_available",
)
KINDS: Final = ("incident", "queue", "health", "run")
LATE_STATES: Final = frozenset({"late", "overdue", "escalated"})
"""Step states the runner gives a step past its deadline."""


@dataclass
class Dirty:
    """Keys that changed since the screens last drew, per kind; ``reset`` redraws all."""

    reset: bool = False
    incident: set[str] = field(default_factory=set)
    queue: set[str] = field(default_factory=set)
    health: set[str] = field(default_factory=set)
    run: set[str] = field(default_factory=set)
    flags: bool = False
    engine: bool = False

    def merge(self, other: Dirty) -> None:
        self.reset = self.reset or other.reset
        for kind in KINDS:
            getattr(self, kind).update(getattr(other, kind))
        self.flags = self.flags or other.flags
        self.engine = self.engine or other.engine

    def __bool__(self) -> bool:
        return self.reset or self.flags or self.engine or any(getattr(self, k) for k in KINDS)


def _key(kind: str, data: dict[str, Any]) -> str:
    if kind == "queue":
        return str(data.get("queue"))
    if kind == "health":
        return str(data.get("subject"))
    return str(data.get("id"))


def wait_level(row: dict[str, Any]) -> str:
    """``ok``, ``warn`` (over half the SLA) or ``breach`` for a queue's longest wait."""
    limit = row.get("sla_threshold_s") or DEFAULT_SLA_S.get(str(row.get("channel")), 30.0)
    wait = float(row.get("longest_wait_s") or 0.0)
    if wait > limit:
        return "breach"
    if wait > limit / 2:
        return "warn"
    return "ok"


def satisfaction_level(row: dict[str, Any]) -> str | None:
    """The colour class of a queue's satisfaction: ``level--breach`` under the 90 % floor,
    ``level--warn`` under the 95 % target (001 §1.1, §1.4), None without enough ratings."""
    share = row.get("satisfaction")
    if share is None or int(row.get("ratings_1h") or 0) < SATISFACTION_MIN_RATINGS:
        return None
    if share < SATISFACTION_FLOOR:
        return "level--breach"
    return "level--warn" if share < SATISFACTION_TARGET else "level--ok"


def run_progress(run: dict[str, Any]) -> tuple[int, int]:
    """(steps done or skipped, all steps) of a playbook run."""
    steps = run.get("steps") or []
    done = sum(1 for s in steps if s.get("state") in ("done", "skipped"))
    return done, len(steps)


def overdue_steps(run: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Steps not finished whose deadline has passed (or which the runner marked overdue)."""
    late = []
    for step in run.get("steps") or []:
        if step.get("state") in ("done", "skipped", "failed"):
            continue
        deadline = step.get("deadline")
        if step.get("state") in LATE_STATES or (deadline and deadline < now):
            late.append(step)
    return late


class BoardState:
    """Everything the board shows, kept from a snapshot plus changes."""

    def __init__(self, stale_after_s: float = 30.0) -> None:
        self.stale_after_s = stale_after_s
        self.seq: str | None = None
        self.incidents: dict[str, dict[str, Any]] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.health: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.flags: dict[str, Any] = {}
        self.engine: dict[str, Any] = {}
        self.connected = False
        self.last_message_at: float | None = None
        self.clock_offset = 0.0
        """Server clock minus ours (from snapshots and pings): ages are server-relative."""

    # --- applying the feed ---------------------------------------------------------

    def apply_snapshot(self, message: dict[str, Any], now: float) -> Dirty:
        """Replace everything with a snapshot; the screens redraw from scratch."""
        self.seq = message.get("seq")
        self.incidents = {_key("incident", i): i for i in message.get("incidents") or []}
        self.queues = {_key("queue", q): q for q in message.get("queues") or []}
        self.health = {_key("health", h): h for h in message.get("health") or []}
        self.runs = {_key("run", r): r for r in message.get("runs") or []}
        self.flags = dict(message.get("flags") or {})
        self.engine = dict(message.get("engine") or {})
        self.last_message_at = now
        if message.get("stale_after_s"):
            self.stale_after_s = float(message["stale_after_s"])
        self.set_server_time(message.get("at"), now)
        return Dirty(reset=True)

    def apply_changes(self, messages: list[dict[str, Any]], now: float) -> Dirty:
        """Apply changes in order; later values of a key replace earlier ones."""
        dirty = Dirty()
        for message in messages:
            self._apply_change(message, dirty)
        if messages:
            self.last_message_at = now
        return dirty

    def _apply_change(self, message: dict[str, Any], dirty: Dirty) -> None:
        kind, op = message.get("kind"), message.get("op")
        data = message.get("data") or {}
        if message.get("seq"):
            self.seq = message["seq"]
        if kind in ("flag", "flags"):
            name = data.get("name")
            if name is not None:
                self.flags[name] = data
                dirty.flags = True
            return
        if kind == "engine":
            self.engine.update(data)
            dirty.engine = True
            return
        table = self._table(kind)
        if table is None or not isinstance(kind, str):
            return
        key = _key(kind, data)
        if op in ("deleted", "removed"):
            table.pop(key, None)
        else:
            table[key] = data
        getattr(dirty, kind).add(key)

    def _table(self, kind: Any) -> dict[str, dict[str, Any]] | None:
        return {
            "incident": self.incidents,
            "queue": self.queues,
            "health": self.health,
            "run": self.runs,
        }.get(kind)

    def touch(self, now: float, server_at: float | None = None) -> None:
        """A ping (or any message) arrived: the link is alive."""
        self.last_message_at = now
        self.set_server_time(server_at, now)

    def set_server_time(self, server_at: Any, now: float) -> None:
        if isinstance(server_at, (int, float)):
            self.clock_offset = float(server_at) - now

    def server_now(self, now: float) -> float:
        return now + self.clock_offset

    # --- questions the screens ask -----------------------------------------------------

    def open_incidents(self) -> list[dict[str, Any]]:
        """Open and acknowledged incidents, worst severity first, then oldest first."""
        live = [i for i in self.incidents.values() if i.get("state") != "resolved"]
        return sorted(
            live,
            key=lambda i: (
                SEVERITY_ORDER.get(i.get("severity", ""), 9),
                i.get("state") != "open",
                i.get("opened_at") or 0.0,
            ),
        )

    def active_runs(self) -> list[dict[str, Any]]:
        live = [r for r in self.runs.values() if r.get("state") not in FINISHED_RUN_STATES]
        return sorted(live, key=lambda r: r.get("started_at") or 0.0)

    def run_for(self, incident_id: str) -> dict[str, Any] | None:
        incident = self.incidents.get(incident_id) or {}
        run_id = incident.get("playbook_run")
        if run_id and run_id in self.runs:
            return self.runs[run_id]
        matches = [r for r in self.runs.values() if r.get("incident") == incident_id]
        return max(matches, key=lambda r: r.get("started_at") or 0.0) if matches else None

    def queue_order(self, column: str, reverse: bool) -> list[str]:
        """Queue names sorted by ``column`` (unknown values last)."""

        def key(name: str) -> tuple[int, Any]:
            value = self.queues[name].get(column)
            if value is None:
                return (1, 0)
            return (0, value if not isinstance(value, str) else value.casefold())

        return sorted(self.queues, key=key, reverse=reverse)

    def health_counts(self) -> dict[str, int]:
        counts = {"up": 0, "degraded": 0, "down": 0, "lost": 0}
        for row in self.health.values():
            status = row.get("status", "down")
            counts[status] = counts.get(status, 0) + 1
        return counts

    # --- freshness ---------------------------------------------------------------------------

    def link_ok(self, now: float) -> bool:
        """Connected and heard from recently (pings come every 5 s)."""
        if not self.connected or self.last_message_at is None:
            return False
        return now - self.last_message_at <= LINK_SILENT_S

    def data_time(self, tile: str) -> float | None:
        """When the freshest data of a tile was produced (event or engine time)."""
        if tile == "queues":
            return max((q.get("updated_at") or 0.0 for q in self.queues.values()), default=None)
        if tile == "health":
            return max(
                (h.get("last_seen") or h.get("updated_at") or 0.0 for h in self.health.values()),
                default=None,
            )
        # Incidents and runs come from the engine and runner: their freshness is the
        # engine's own heartbeat when it reports one, else the last message of the link.
        engine_at = self.engine.get("updated_at")
        if engine_at is not None:
            try:
                return float(engine_at)
            except (TypeError, ValueError):
                pass
        if self.last_message_at is None:
            return None
        return self.server_now(self.last_message_at)

    def tile_age(self, tile: str, now: float) -> float | None:
        """Seconds since the tile's freshest data, on the server's clock."""
        at = self.data_time(tile)
        return None if at is None else max(0.0, self.server_now(now) - at)

    def tile_stale(self, tile: str, now: float) -> bool:
        """Stale when the link is down or the tile's source stopped reporting."""
        if not self.link_ok(now):
            return True
        age = self.tile_age(tile, now)
        if age is None:
            return False
        return age > self.stale_after_s

    def row_stale(self, row: dict[str, Any], now: float) -> bool:
        at = row.get("last_seen") or row.get("updated_at")
        return at is not None and self.server_now(now) - float(at) > self.stale_after_s
