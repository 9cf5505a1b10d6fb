"""The collector's Prometheus metrics, rendered in the text exposition format.

A few counters, gauges and fixed-bucket histograms kept in plain dicts: the
collector is one process and one event loop, so no locks are needed, and the
hot path only does dictionary increments. ``render()`` produces the body of
``GET /metrics``.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

BATCH_SIZE_BUCKETS = (1, 10, 100, 500, 1000, 2000, 5000, 10_000)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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

    def lines(self, name: str, help_text: str) -> list[str]:
        out = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{le="{_num(bound)}"}} {running}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.n}')
        out.append(f"{name}_sum {_num(self.total)}")
        out.append(f"{name}_count {self.n}")
        return out


@dataclass(slots=True)
class CollectorMetrics:
    """Everything ``/metrics`` shows. Gauges are read through callbacks at render time."""

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
    """Gauge name -> function returning its current value (spool depth...)."""

    def count_accepted(self, types: Iterable[str]) -> None:
        self.accepted.update(types)

    def count_rejected(self, reason: str, event_type: str) -> None:
        self.rejected[(reason or "event", event_type or "unknown")] += 1

    def render(self) -> str:
        lines: list[str] = []
        prefix = "watchfloor_collector"
        lines += _counter(
            f"{prefix}_events_accepted_total",
            "Events accepted (written to Redis or spooled).",
            {f'type="{_esc(k)}"': v for k, v in sorted(self.accepted.items())},
        )
        lines += _counter(
            f"{prefix}_events_rejected_total",
            "Events rejected, by the field at fault and the event type.",
            {
                f'reason="{_esc(r)}",type="{_esc(t)}"': v
                for (r, t), v in sorted(self.rejected.items())
            },
        )
        lines += _counter(
            f"{prefix}_events_duplicate_total",
            "Events dropped because their id was seen from the same source recently.",
            {f'source="{_esc(k)}"': v for k, v in sorted(self.duplicates.items())},
        )
        lines += _counter(
            f"{prefix}_events_clock_refused_total",
            "Events refused because their ts lies outside the collector's clock window.",
            {
                f'source="{_esc(s)}",direction="{d}"': v
                for (s, d), v in sorted(self.clock_refused.items())
            },
        )
        lines += _counter(
            f"{prefix}_batches_total",
            "Batches received, by transport and response status.",
            {f'transport="{t}",status="{s}"': v for (t, s), v in sorted(self.requests.items())},
        )
        lines += _counter(
            f"{prefix}_probe_checks_total",
            "Probe checks run, by probe and resulting status.",
            {f'probe="{_esc(p)}",status="{s}"': v for (p, s), v in sorted(self.probe_runs.items())},
        )
        lines += self.batch_sizes.lines(f"{prefix}_batch_events", "Events per batch received.")
        lines += self.redis_latency.lines(
            f"{prefix}_redis_write_seconds", "Latency of one batch write to Redis."
        )
        lines += _counter(
            f"{prefix}_spooled_batches_total",
            "Batches written to the spool.",
            {"": self.spooled_batches},
        )
        lines += _counter(
            f"{prefix}_replayed_batches_total",
            "Spooled batches replayed.",
            {"": self.replayed_batches},
        )
        lines += _counter(
            f"{prefix}_stream_trimmed_entries_total",
            "Events stream entries trimmed by the byte and age budgets.",
            {"": self.trimmed_entries},
        )
        lines += _counter(
            f"{prefix}_ws_frames_total", "WebSocket batches read.", {"": self.ws_frames}
        )
        for name, read in sorted(self.gauges.items()):
            lines += [f"# TYPE {prefix}_{name} gauge", f"{prefix}_{name} {_num(read())}"]
        return "\n".join(lines) + "\n"


def _counter(name: str, help_text: str, values: dict[str, int]) -> list[str]:
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    for labels, value in values.items():
        out.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")
    return out


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)
