"""The queue board and the health board: latest figures per queue and per component.

:class:`Board` is a passive observer of the engine (same ``observe`` /
``evaluate`` / ``snapshot`` / ``restore`` contract as a detector, but it never
signals): it sees the released events in event-time order and keeps, per
queue, the last snapshot plus 30-second buckets of the last five minutes
(offered, answered, answered within the channel's threshold, abandoned, wait
sum) from which it derives service level, abandon rate and average speed of
answer; and, per component / heartbeat source / silent channel, a health row.
Rows that changed are written together by :meth:`Board.flush` inside the
service's checkpoint transaction (one ``HSET`` per row plus a ``queue`` /
``health`` change), never per event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Final

import msgpack

from watchfloor.core import keys
from watchfloor.core.changes import add_change
from watchfloor.core.events import Contact, Event, Health, Heartbeat, QueueStats
from watchfloor.core.vocabulary import CSAT_SATISFIED_FROM, SLA_ANSWER_S
from watchfloor.monitor.detectors.base import Signal

logger = logging.getLogger(__name__)

BUCKET_S: Final = 30
WINDOW_BUCKETS: Final = 10  # five minutes
TREND_LEN: Final = 30
TREND_STEP_S: Final = 10
SLA_THRESHOLDS_S: Final[Mapping[str, float]] = SLA_ANSWER_S
"""Per channel, core.vocabulary's (SEEDS.md): chat first reply 30 s, phone 3 rings, email 24 h."""
HEARTBEAT_MIN_LOST_S: Final = 30.0
CSAT_BUCKET_S: Final = 300
CSAT_BUCKETS: Final = 12  # satisfaction over the last hour: ratings are few and lag
# Bucket fields: offered, answered, in_sla, abandoned, wait_sum, wait_n
_OFFERED, _ANSWERED, _IN_SLA, _ABANDONED, _WAIT_SUM, _WAIT_N = range(6)


class _Queue:
    __slots__ = ("buckets", "csat", "row", "stats_counts", "trend_at")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.buckets: dict[int, list[float]] = {}
        self.csat: dict[int, list[int]] = {}
        """5-minute bucket -> [ratings, satisfied (csat 4-5)], the last hour."""
        self.stats_counts = False
        self.trend_at = -1


class Board:
    """Queue and health rows, derived from the event stream in event time."""

    name: ClassVar[str] = "board"
    event_types: ClassVar[frozenset[str]] = frozenset(
        {"queue.stats", "contact", "health", "heartbeat"}
    )

    def __init__(
        self,
        sla_thresholds: Mapping[str, float] | None = None,
        threshold_for: Callable[[str, str], float] | None = None,
    ) -> None:
        self.thresholds = {**SLA_THRESHOLDS_S, **(sla_thresholds or {})}
        self.threshold_for = threshold_for
        """(queue, channel) -> answer threshold in seconds: the rules' ``sla`` figures."""
        self.queues: dict[str, _Queue] = {}
        self.health: dict[str, dict[str, Any]] = {}
        self._intervals: dict[str, float] = {}
        self._dirty_queues: set[str] = set()
        self._dirty_health: set[str] = set()
        self._silent: set[str] = set()

    # --- observing -----------------------------------------------------------------

    def observe(self, event: Event) -> None:
        kind = event.type
        if kind == "contact":
            self._contact(event)  # type: ignore[arg-type]
        elif kind == "queue.stats":
            self._stats(event)  # type: ignore[arg-type]
        elif kind == "health":
            self._health(event)  # type: ignore[arg-type]
        elif kind == "heartbeat":
            self._heartbeat(event)  # type: ignore[arg-type]

    def observers_by_type(self) -> dict[str, Callable[[Any], None]]:
        """One method per event type, for the engine's routing table."""
        return {
            "contact": self._contact,
            "queue.stats": self._stats,
            "health": self._health,
            "heartbeat": self._heartbeat,
        }

    def _queue(self, name: str, channel: str, source: str) -> _Queue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = _Queue(
                _empty_row(name, channel, source, self._threshold(name, channel))
            )
        return queue

    def _threshold(self, queue: str, channel: str) -> float | None:
        if self.threshold_for is not None:
            try:
                return float(self.threshold_for(queue, channel))
            except Exception:
                logger.exception("no SLA threshold for queue=%s channel=%s", queue, channel)
        return self.thresholds.get(channel)

    def _bucket(self, queue: _Queue, ts: float) -> list[float]:
        index = int(ts // BUCKET_S)
        bucket = queue.buckets.get(index)
        if bucket is None:
            bucket = queue.buckets[index] = [0.0] * 6
            for old in [i for i in queue.buckets if i <= index - WINDOW_BUCKETS]:
                del queue.buckets[old]
        return bucket

    def _stats(self, event: QueueStats) -> None:
        queue = self._queue(event.queue, event.channel, event.source)
        row = queue.row
        row.update(
            channel=event.channel,
            waiting=event.waiting,
            longest_wait_s=event.longest_wait_s,
            agents_available=event.agents_available,
            agents_busy=event.agents_busy,
            updated_at=event.ts,
            source=event.source,
        )
        if event.offered is not None:
            queue.stats_counts = True
            bucket = self._bucket(queue, event.ts)
            bucket[_OFFERED] += event.offered
            bucket[_ANSWERED] += event.answered or 0
            bucket[_ABANDONED] += event.abandoned or 0
            bucket[_IN_SLA] += event.answered_in_sla or 0
        step = int(event.ts // TREND_STEP_S)
        trend = row["trend"]
        if step == queue.trend_at and trend:
            trend[-1] = event.waiting
        else:
            trend.append(event.waiting)
            del trend[:-TREND_LEN]
            queue.trend_at = step
        self._dirty_queues.add(event.queue)

    def _contact(self, event: Contact) -> None:
        queue = self._queue(event.queue, event.channel, event.source)
        bucket = self._bucket(queue, event.ts)
        action = event.action
        if action == "answered" and event.wait_s is not None:
            bucket[_WAIT_SUM] += event.wait_s
            bucket[_WAIT_N] += 1
        if event.csat is not None:
            _rate(queue.csat, event.ts, event.csat)
        if not queue.stats_counts:
            if action == "offered":
                bucket[_OFFERED] += 1
            elif action == "abandoned":
                bucket[_ABANDONED] += 1
            elif action == "answered":
                bucket[_ANSWERED] += 1
                threshold = queue.row["sla_threshold_s"]
                if event.wait_s is not None and threshold and event.wait_s <= threshold:
                    bucket[_IN_SLA] += 1
        self._dirty_queues.add(event.queue)

    def _health(self, event: Health) -> None:
        row = self.health.get(event.component) or _health_row(event.component, "component")
        row.update(
            status=event.status,
            latency_ms=event.latency_ms,
            error_rate=event.error_rate,
            message=event.message or "",
            updated_at=event.ts,
            last_seen=event.ts,
        )
        self.health[event.component] = row
        self._dirty_health.add(event.component)

    def _heartbeat(self, event: Heartbeat) -> None:
        subject = event.source
        row = self.health.get(subject)
        if row is None:
            row = self.health[subject] = _health_row(subject, "heartbeat")
        elif row["last_seen"] is not None and event.ts > row["last_seen"]:
            gap = event.ts - row["last_seen"]
            previous = self._intervals.get(subject)
            self._intervals[subject] = (
                gap if previous is None else previous + 0.2 * (gap - previous)
            )
        if row["last_seen"] is None or event.ts >= row["last_seen"]:
            row.update(status="up", updated_at=event.ts, last_seen=event.ts, message="")
            self._dirty_health.add(subject)

    # --- evaluation hooks ---------------------------------------------------------------

    def evaluate(self, watermark: float) -> list[Signal]:
        """Mark heartbeats lost (3 x their usual interval, at least 30 s); never signals."""
        for subject, row in self.health.items():
            if row["kind"] != "heartbeat" or row["status"] == "lost":
                continue
            limit = max(HEARTBEAT_MIN_LOST_S, 3 * self._intervals.get(subject, 0.0))
            silent_s = watermark - row["last_seen"]
            if silent_s > limit:
                self._lost(subject, watermark, f"no heartbeat for {silent_s:.0f}s")
        return []

    def note_signals(self, at: float, signals: Iterable[Signal]) -> None:
        """Follow the outage detector: silent channels / queues, lost heartbeats."""
        silent: set[str] = set()
        for sig in signals:
            if sig.kind != "outage":
                continue
            if sig.rule.startswith("outage.silent"):
                silent.add(sig.subject)
            elif sig.rule == "outage.heartbeat":
                self._lost(sig.subject, at, sig.title)
        for subject in silent - self._silent:
            row = self.health.get(subject) or _health_row(subject, "channel")
            row.update(status="down", updated_at=at, message="intake went silent")
            self.health[subject] = row
            self._dirty_health.add(subject)
        for subject in self._silent - silent:
            known = self.health.get(subject)
            if known is not None and known["kind"] == "channel":
                known.update(status="up", updated_at=at, message="")
                self._dirty_health.add(subject)
        self._silent = silent

    def _lost(self, subject: str, at: float, message: str) -> None:
        row = self.health.get(subject)
        if row is None or row["kind"] != "heartbeat" or row["status"] == "lost":
            return
        row.update(status="lost", updated_at=at, message=message)
        self._dirty_health.add(subject)

    # --- rows -------------------------------------------------------------------------

    def queue_row(self, name: str) -> dict[str, Any]:
        queue = self.queues[name]
        sums = [0.0] * 6
        for bucket in queue.buckets.values():
            for i in range(6):
                sums[i] += bucket[i]
        row = dict(queue.row, trend=list(queue.row["trend"]))
        row["offered_5m"] = int(sums[_OFFERED])
        row["service_level"] = _ratio(sums[_IN_SLA], sums[_ANSWERED])
        row["abandon_rate"] = _ratio(sums[_ABANDONED], sums[_OFFERED])
        row["asa_s"] = _ratio(sums[_WAIT_SUM], sums[_WAIT_N], cap=None)
        ratings = sum(r for r, _ in queue.csat.values())
        row["ratings_1h"] = ratings
        row["satisfaction"] = _ratio(sum(g for _, g in queue.csat.values()), ratings)
        return row

    def dirty(self) -> bool:
        return bool(self._dirty_queues or self._dirty_health)

    def flush(self, pipe: Any, changes_maxlen: int = 100_000) -> int:
        """Queue the changed rows (and their changes) on ``pipe``; return how many."""
        written = 0
        for name in sorted(self._dirty_queues):
            row = self.queue_row(name)
            pipe.hset(keys.QUEUES, name, msgpack.packb(row, use_bin_type=True))
            add_change(pipe, "queue", "updated", row, changes_maxlen)
            written += 1
        for subject in sorted(self._dirty_health):
            row = dict(self.health[subject])
            pipe.hset(keys.HEALTH, subject, msgpack.packb(row, use_bin_type=True))
            add_change(pipe, "health", "updated", row, changes_maxlen)
            written += 1
        self._dirty_queues.clear()
        self._dirty_health.clear()
        return written

    # --- state --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "queues": {
                n: {
                    "row": q.row,
                    "buckets": [[i, b] for i, b in q.buckets.items()],
                    "stats_counts": q.stats_counts,
                    "trend_at": q.trend_at,
                    "csat": [[i, b] for i, b in q.csat.items()],
                }
                for n, q in self.queues.items()
            },
            "health": self.health,
            "intervals": self._intervals,
            "silent": sorted(self._silent),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.queues = {}
        for name, data in state.get("queues", {}).items():
            queue = _Queue(dict(data["row"]))
            queue.buckets = {int(i): list(b) for i, b in data["buckets"]}
            queue.stats_counts = bool(data["stats_counts"])
            queue.trend_at = int(data["trend_at"])
            queue.csat = {int(i): list(b) for i, b in data.get("csat", [])}
            self.queues[name] = queue
        self.health = {s: dict(r) for s, r in state.get("health", {}).items()}
        self._intervals = dict(state.get("intervals", {}))
        self._silent = set(state.get("silent", []))


def _empty_row(name: str, channel: str, source: str, threshold: float | None) -> dict[str, Any]:
    return {
        "queue": name,
        "channel": channel,
        "waiting": 0,
        "longest_wait_s": 0.0,
        "agents_available": 0,
        "agents_busy": 0,
        "service_level": None,
        "abandon_rate": None,
        "asa_s": None,
        "offered_5m": 0,
        "satisfaction": None,
        "ratings_1h": 0,
        "trend": [],
        "sla_threshold_s": threshold,
        "updated_at": None,
        "source": source,
    }


def _health_row(subject: str, kind: str) -> dict[str, Any]:
    return {
        "subject": subject,
        "kind": kind,
        "status": "up",
        "latency_ms": None,
        "error_rate": None,
        "message": "",
        "updated_at": None,
        "last_seen": None,
    }


def _rate(csat: dict[int, list[int]], ts: float, score: int) -> None:
    """One rating into its 5-minute bucket; buckets older than the hour are dropped."""
    index = int(ts // CSAT_BUCKET_S)
    bucket = csat.get(index)
    if bucket is None:
        bucket = csat[index] = [0, 0]
        for old in [i for i in csat if i <= index - CSAT_BUCKETS]:
            del csat[old]
    bucket[0] += 1
    bucket[1] += score >= CSAT_SATISFIED_FROM


def _ratio(part: float, whole: float, cap: float | None = 1.0) -> float | None:
    if whole <= 0:
        return None
    value = part / whole
    if cap is not None:
        value = min(value, cap)
    return round(value, 4)


async def read_queues(redis: Any) -> list[dict[str, Any]]:
    """Every queue row, sorted by name (for the API and tests)."""
    raw = await redis.hgetall(keys.QUEUES)
    return sorted((msgpack.unpackb(v, raw=False) for v in raw.values()), key=lambda r: r["queue"])


async def read_health(redis: Any) -> list[dict[str, Any]]:
    """Every health row, sorted by subject."""
    raw = await redis.hgetall(keys.HEALTH)
    return sorted((msgpack.unpackb(v, raw=False) for v in raw.values()), key=lambda r: r["subject"])
