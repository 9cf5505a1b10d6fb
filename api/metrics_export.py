"""The monitor's ``/metrics``: the API's own counters, the engine's status and the board.

One :class:`MonitorExport` per API application holds its own prometheus_client
``CollectorRegistry`` (never the process-global one: a test process starts
several apps) with two custom collectors that read the current figures when a
scrape comes, instead of mirroring them into gauges:

- :class:`_ProcessCollector` reads the process's counters (:class:`ApiMetrics`:
  requests, the live feed) and the live hub's client count;
- :class:`_StoredCollector` turns what :func:`read_figures` just read from Redis
  into families: the board (per queue: waiting, longest wait, service level and
  its target, abandon rate, agents; per component: a 0/1 series per status),
  open incidents by kind, severity and state, active playbook runs, and the
  engine's status folded over every shard (``core.engine_status``).

Redis is read with ``await`` first, then the registry is rendered synchronously,
so one scrape's families all come from one read. Queue and component names come
from producers: they leave here through ``core.printable`` (control characters
made visible, as everywhere a person reads them) and prometheus_client escapes
what the exposition format needs. docs/metrics.md lists every series.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from redis.exceptions import RedisError

from watchfloor.api.board import HEALTH_STATUSES, engine_status, health_rows, queue_rows
from watchfloor.api.counters import ApiMetrics
from watchfloor.api.unplaced import unplaced_counts
from watchfloor.core import keys
from watchfloor.core.exposition import render
from watchfloor.core.printable import printable
from watchfloor.core.vocabulary import INCIDENT_KINDS, SEVERITIES
from watchfloor.monitor.rules import RulesError, load_rules

logger = logging.getLogger(__name__)

OPEN_STATES: Final = ("open", "acknowledged")
ENGINE_FIGURE: Final = re.compile(r"[a-z][a-z0-9_]*\Z")
"""Engine status fields exported as ``watchfloor_engine_<name>`` gauges (plain names only)."""
MGET_CHUNK: Final = 500

# (series suffix, board row field, help, scale): the numeric figures of a queue row.
QUEUE_FIGURES: Final = (
    ("waiting", "waiting", "Contacts waiting in the queue.", 1.0),
    ("longest_wait_seconds", "longest_wait_s", "Longest current wait in the queue.", 1.0),
    ("agents_available", "agents_available", "Agents available on the queue.", 1.0),
    ("agents_busy", "agents_busy", "Agents busy on the queue.", 1.0),
    ("service_level", "service_level",
     "Answered within the answer threshold / answered, last 5 minutes (0-1).", 1.0),
    ("abandon_rate", "abandon_rate", "Abandoned / offered, last 5 minutes (0-1).", 1.0),
    ("average_speed_of_answer_seconds", "asa_s", "Mean wait of answered contacts, last 5 min.",
     1.0),
    ("offered_5m", "offered_5m", "Contacts offered in the last 5 minutes.", 1.0),
    ("answer_threshold_seconds", "sla_threshold_s",
     "Answer threshold the service level counts against.", 1.0),
    ("age_seconds", "age_s", "Seconds since the queue's figures were updated.", 1.0),
)  # fmt: skip
COMPONENT_FIGURES: Final = (
    ("latency_seconds", "latency_ms", "Latency the component last reported.", 0.001),
    ("error_rate", "error_rate", "Error rate the component last reported (0-1).", 1.0),
    ("age_seconds", "age_s", "Seconds since the component's row was updated.", 1.0),
)


@dataclass(frozen=True, slots=True)
class StoredFigures:
    """What one scrape read from Redis (``redis_up`` False: nothing else was read)."""

    redis_up: bool
    incidents_open: int = 0
    incidents_by: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    """(kind, severity, state) -> open or acknowledged incidents."""
    runs_active: int = 0
    engine: Mapping[str, Any] = field(default_factory=dict)
    queues: Sequence[Mapping[str, Any]] = ()
    health: Sequence[Mapping[str, Any]] = ()


async def read_figures(redis: Any, stale_after_s: float) -> StoredFigures:
    """Everything the stored families show, read now (``redis_up`` False when Redis fails)."""
    try:
        open_ids = await redis.zrange(keys.INCIDENTS_OPEN, 0, -1)
        return StoredFigures(
            redis_up=True,
            incidents_open=len(open_ids),
            incidents_by=await _incident_counts(redis, open_ids),
            runs_active=int(await redis.zcard(keys.RUNS_ACTIVE)),
            engine=await engine_status(redis),
            queues=await queue_rows(redis, stale_after_s),
            health=await health_rows(redis, stale_after_s),
        )
    except (RedisError, OSError) as exc:
        logger.warning("metrics could not read Redis error=%s", exc)
        return StoredFigures(redis_up=False)


async def _incident_counts(redis: Any, ids: Sequence[bytes | str]) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    names = [keys.incident(i.decode() if isinstance(i, bytes) else i) for i in ids]
    for start in range(0, len(names), MGET_CHUNK):
        for raw in await redis.mget(names[start : start + MGET_CHUNK]):
            row = _unpack(raw)
            if row is not None:
                kind, severity, state = (_label(row.get(f)) for f in ("kind", "severity", "state"))
                counts[(kind, severity, state)] += 1
    return counts


def _unpack(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.UnpackException):
        return None
    return value if isinstance(value, dict) else None


class MonitorExport:
    """The API app's registry and what renders it (one per application: :data:`EXPORT`)."""

    def __init__(
        self,
        metrics: ApiMetrics,
        live_clients: Callable[[], int],
        *,
        stale_after_s: float,
        rules_file: str | None = None,
    ) -> None:
        self.stale_after_s = stale_after_s
        self.registry = CollectorRegistry(auto_describe=False)
        self._stored = _StoredCollector(_RuleTargets(rules_file))
        self.registry.register(_ProcessCollector(metrics, live_clients))
        self.registry.register(self._stored)

    async def exposition(self, redis: Any, accept: str = "") -> tuple[bytes, str]:
        """Read Redis, then render: the body of ``GET /metrics`` and its content type."""
        figures = await read_figures(redis, self.stale_after_s)
        # No await from here on: the families rendered are those of this read.
        self._stored.figures = figures
        return render(self.registry, accept)


class _ProcessCollector(Collector):
    def __init__(self, metrics: ApiMetrics, live_clients: Callable[[], int]) -> None:
        self.metrics = metrics
        self.live_clients = live_clients

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield GaugeMetricFamily(
            "watchfloor_api_uptime_seconds", "Seconds since the API started.",
            value=round(time.time() - m.started, 3),
        )  # fmt: skip
        requests = CounterMetricFamily(
            "watchfloor_api_requests", "Requests answered, by method, route and status.",
            labels=["method", "route", "status"],
        )  # fmt: skip
        for (method, route, status), count in sorted(m.requests.items()):
            requests.add_metric([printable(method), printable(route), str(status)], count)
        yield requests
        yield GaugeMetricFamily(
            "watchfloor_api_live_clients", "Connected /v1/live clients.", value=self.live_clients()
        )
        for name, help_text, value in (
            ("changes", "Changes read from the changes stream.", m.live_changes),
            ("snapshots", "Snapshots sent to live clients.", m.live_snapshots),
            ("resyncs", "Live clients that fell behind and were resynchronised.", m.live_resyncs),
        ):
            yield CounterMetricFamily(f"watchfloor_api_live_{name}", help_text, value=value)


class _RuleTargets:
    """Service-level target and abandon-rate limit per queue, from the rules file.

    Read again when the file changes (``watchfloor reload`` applies a changed file to
    the engine; the targets follow); a file that does not load keeps the last good one.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._stamp: int | None = None
        self._rules: Any = None

    def get(self, queue: str, channel: str) -> Any:
        """The ``[sla]`` parameters for this queue, or None when no rules could be read."""
        if self._rules is None:
            return None
        return self._rules.sla.get(channel=channel, queue=queue)

    def refresh(self) -> None:
        """Load the rules file again if it changed since the last scrape."""
        try:
            stamp = os.stat(self.path).st_mtime_ns if self.path else 0
        except OSError:
            stamp = -1
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._rules = load_rules(self.path if stamp > 0 else None)
        except (RulesError, OSError) as exc:
            logger.warning("metrics keep the last rules path=%s error=%s", self.path, exc)


class _StoredCollector(Collector):
    def __init__(self, targets: _RuleTargets) -> None:
        self.targets = targets
        self.figures = StoredFigures(redis_up=False)

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        yield GaugeMetricFamily("watchfloor_redis_up", "Whether Redis answered.", value=f.redis_up)
        if not f.redis_up:
            return
        yield GaugeMetricFamily(
            "watchfloor_incidents_open", "Incidents open or acknowledged.", value=f.incidents_open
        )
        yield _incidents_by(f.incidents_by)
        yield GaugeMetricFamily(
            "watchfloor_playbook_runs_active", "Playbook runs not finished.", value=f.runs_active
        )
        yield from _engine_families(f.engine)
        yield from _queue_families(f.queues, self.targets)
        yield from _component_families(f.health)


def _incidents_by(counts: Mapping[tuple[str, str, str], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "watchfloor_incidents_open_by_kind",
        "Incidents open or acknowledged, by kind, severity and state (0 for the vocabulary's).",
        labels=["kind", "severity", "state"],
    )
    every: Counter[tuple[str, str, str]] = Counter(
        {(k, s, st): 0 for k in INCIDENT_KINDS for s in SEVERITIES for st in OPEN_STATES}
    )
    every.update(counts)
    for labels, count in sorted(every.items()):
        family.add_metric(list(labels), count)
    return family


def _engine_families(engine: Mapping[str, Any]) -> Iterator[Metric]:
    unplaced = CounterMetricFamily(
        "watchfloor_engine_unplaced_events",
        "Events the engine could not place in time, by source and reason.",
        labels=["source", "reason"],
    )
    for source, reasons in sorted(unplaced_counts(dict(engine)).items()):
        for reason, count in sorted(reasons.items()):
            unplaced.add_metric([printable(source), printable(reason)], count)
    yield unplaced
    for name, value in sorted(engine.items()):
        if _is_number(value) and ENGINE_FIGURE.match(name) and name != "unplaced_events":
            yield GaugeMetricFamily(
                f"watchfloor_engine_{name}",
                f"Engine status {name}, folded over every events shard.",
                value=value,
            )


def _queue_families(rows: Iterable[Mapping[str, Any]], targets: _RuleTargets) -> Iterator[Metric]:
    targets.refresh()
    labels = ["queue", "channel"]
    families = {
        field_: GaugeMetricFamily(f"watchfloor_queue_{suffix}", help_text, labels=labels)
        for suffix, field_, help_text, _ in QUEUE_FIGURES
    }
    scale = {field_: s for _, field_, _, s in QUEUE_FIGURES}
    stale = GaugeMetricFamily(
        "watchfloor_queue_stale", "1 when the queue's figures are older than the API's "
        "stale_after_s.", labels=labels,
    )  # fmt: skip
    target = GaugeMetricFamily(
        "watchfloor_queue_service_level_target", "Service level the SLA rules hold the queue to.",
        labels=labels,
    )  # fmt: skip
    limit = GaugeMetricFamily(
        "watchfloor_queue_abandon_rate_limit", "Abandon rate at which the SLA rules call a breach.",
        labels=labels,
    )  # fmt: skip
    for row in rows:
        queue, channel = str(row.get("queue", "")), str(row.get("channel") or "")
        values = [_label(queue), _label(channel)]
        for name, family in families.items():
            if _is_number(row.get(name)):
                family.add_metric(values, float(row[name]) * scale[name])
        stale.add_metric(values, 1.0 if row.get("stale") else 0.0)
        rules = targets.get(queue, channel)
        if rules is not None:
            target.add_metric(values, rules.service_level_target)
            limit.add_metric(values, rules.abandon_rate_limit)
    yield from families.values()
    yield from (stale, target, limit)


def _component_families(rows: Iterable[Mapping[str, Any]]) -> Iterator[Metric]:
    labels = ["component", "kind"]
    status = GaugeMetricFamily(
        "watchfloor_component_status",
        "1 for the component's current status (up, degraded, down, lost), 0 for the others.",
        labels=[*labels, "status"],
    )
    families = {
        field_: GaugeMetricFamily(f"watchfloor_component_{suffix}", help_text, labels=labels)
        for suffix, field_, help_text, _ in COMPONENT_FIGURES
    }
    scale = {field_: s for _, field_, _, s in COMPONENT_FIGURES}
    for row in rows:
        values = [_label(row.get("subject", "")), _label(row.get("kind", ""))]
        current = str(row.get("status", ""))
        for name in (*HEALTH_STATUSES, *([current] if current not in HEALTH_STATUSES else [])):
            status.add_metric([*values, _label(name)], 1.0 if name == current else 0.0)
        for name, family in families.items():
            if _is_number(row.get(name)):
                family.add_metric(values, float(row[name]) * scale[name])
    yield status
    yield from families.values()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _label(value: Any) -> str:
    """A label value from stored text: control and invisible characters made visible."""
    return printable("" if value is None else value)


EXPORT: Final = web.AppKey("wf_metrics_export", MonitorExport)
"""The application's :class:`MonitorExport`, set by ``create_app``."""
