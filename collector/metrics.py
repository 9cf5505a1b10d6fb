"""The collector's Prometheus metrics: plain counters on the hot path, prometheus_client at scrape.

The ingest path only does dictionary increments on :class:`CollectorMetrics` (one
process, one event loop, no locks). A custom prometheus_client collector
(:class:`_Exporter`) reads those figures when ``GET /metrics`` is scraped and
turns them into metric families of the app's own ``CollectorRegistry`` (never the
process-global default registry: a test process runs several apps), rendered by
prometheus_client, which escapes label values (sources and event types come from
producers). :meth:`CollectorMetrics.exposition` answers in the format the
scraper's ``Accept`` header asks for (Prometheus text or OpenMetrics).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from watchfloor.core.exposition import render

BATCH_SIZE_BUCKETS = (1, 10, 100, 500, 1000, 2000, 5000, 10_000)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PREFIX = "watchfloor_collector"

GAUGE_HELP: Mapping[str, str] = {
    "spool_bytes": "Bytes waiting in the spool for Redis.",
    "spool_batches": "Batches waiting in the spool for Redis.",
    "redis_up": "Whether the last write to Redis succeeded (1) or the collector spools (0).",
    "events_stream_bytes_estimate": "Estimated bytes held by the events streams.",
}
"""HELP texts of the gauges other parts register in ``CollectorMetrics.gauges``."""


@dataclass(slots=True)
class Histogram:
    """A cumulative Prometheus histogram with fixed upper bounds."""

    bounds: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1

    def family(self, name: str, help_text: str) -> HistogramMetricFamily:
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            buckets.append((_le(bound), running))
        buckets.append(("+Inf", self.n))
        return HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=self.total)


@dataclass(slots=True)
class CollectorMetrics:
    """Everything ``/metrics`` shows. Gauges are read through callbacks at scrape time."""

    accepted: Counter[str] = field(default_factory=Counter)
    """Events accepted, by event type."""
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Events rejected, by (reason, event type)."""
    duplicates: Counter[str] = field(default_factory=Counter)
    """Events dropped as duplicates, by source."""
    clock_refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Events refused for a ``ts`` outside the clock window, by (source, ahead|behind)."""
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Batches received, by (transport, status)."""
    batch_sizes: Histogram = field(default_factory=lambda: Histogram(BATCH_SIZE_BUCKETS))
    redis_latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    ws_frames: int = 0
    """WebSocket batches read (answered or not)."""
    spooled_batches: int = 0
    replayed_batches: int = 0
    trimmed_entries: int = 0
    """Events stream entries trimmed (by the byte and age budgets)."""
    probe_runs: Counter[tuple[str, str]] = field(default_factory=Counter)
    gauges: dict[str, Callable[[], float]] = field(default_factory=dict)
    """Gauge name (after ``watchfloor_collector_``) -> function returning its current value."""
    registry: CollectorRegistry = field(init=False, repr=False)
    """This app's own registry, holding one collector that reads the fields above."""

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Exporter(self))

    def count_accepted(self, types: Iterable[str]) -> None:
        self.accepted.update(types)

    def count_rejected(self, reason: str, event_type: str) -> None:
        self.rejected[(reason or "event", event_type or "unknown")] += 1

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The body of ``GET /metrics`` and its content type, as ``accept`` asks."""
        return render(self.registry, accept)


class _Exporter(Collector):
    """Reads a :class:`CollectorMetrics` when the registry is collected."""

    def __init__(self, metrics: CollectorMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield _counter(
            "events_accepted", "Events accepted (written to Redis or spooled).",
            ["type"], [((t,), n) for t, n in m.accepted.items()],
        )  # fmt: skip
        yield _counter(
            "events_rejected", "Events rejected, by the field at fault and the event type.",
            ["reason", "type"], m.rejected.items(),
        )  # fmt: skip
        yield _counter(
            "events_duplicate",
            "Events dropped because their id was seen from the same source recently.",
            ["source"], [((s,), n) for s, n in m.duplicates.items()],
        )  # fmt: skip
        yield _counter(
            "events_clock_refused",
            "Events refused because their ts lies outside the collector's clock window.",
            ["source", "direction"], m.clock_refused.items(),
        )  # fmt: skip
        yield _counter(
            "batches", "Batches received, by transport and response status.",
            ["transport", "status"], [((t, str(s)), n) for (t, s), n in m.requests.items()],
        )  # fmt: skip
        yield _counter(
            "probe_checks", "Probe checks run, by probe and resulting status.",
            ["probe", "status"], m.probe_runs.items(),
        )  # fmt: skip
        yield m.batch_sizes.family(f"{PREFIX}_batch_events", "Events per batch received.")
        yield m.redis_latency.family(
            f"{PREFIX}_redis_write_seconds", "Latency of one batch write to Redis."
        )
        yield from self._totals()
        for name, read in sorted(m.gauges.items()):
            yield GaugeMetricFamily(
                f"{PREFIX}_{name}", GAUGE_HELP.get(name, name.replace("_", " ")), value=read()
            )

    def _totals(self) -> Iterator[Metric]:
        m = self.metrics
        for name, help_text, value in (
            ("spooled_batches", "Batches written to the spool.", m.spooled_batches),
            ("replayed_batches", "Spooled batches replayed.", m.replayed_batches),
            ("stream_trimmed_entries", "Events stream entries trimmed by the byte and age budgets.",
             m.trimmed_entries),
            ("ws_frames", "WebSocket batches read.", m.ws_frames),
        ):  # fmt: skip
            yield CounterMetricFamily(f"{PREFIX}_{name}", help_text, value=value)


def _counter(
    name: str, help_text: str, labels: list[str], values: Iterable[tuple[tuple[str, ...], int]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", help_text, labels=labels)
    for label_values, count in sorted(values):
        family.add_metric(list(label_values), count)
    return family


def _le(bound: float) -> str:
    """A bucket bound as prometheus_client's own histograms write it (``1.0``, ``0.0005``)."""
    return floatToGoString(bound)
