"""Replay: a recorded file of events through the same engine, in event time.

``watchfloor replay FILE.jsonl --out INCIDENTS.jsonl`` reads one JSON event a
line, validates each with :func:`core.events.validate_event` (a bad line is
reported with its number and skipped, never fatal), feeds the events in
chunks to the very :class:`~monitor.engine.Engine` the live monitor runs
(same detectors, lifecycle and incident store semantics, on a Redis of its
own), flushes the watermark past the last event, and writes every incident
opened, in its final state, one JSON object a line. This is how rules are
back-tested on a recorded day.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from watchfloor.core.config import Config
from watchfloor.core.events import Event, InvalidEvent, validate_event
from watchfloor.core.incidents import IncidentStore
from watchfloor.monitor.checkpoint import ActionApplier
from watchfloor.monitor.engine import Engine, time_slices
from watchfloor.monitor.service import build_engine

logger = logging.getLogger(__name__)

CHUNK: Final = 5_000
CHUNK_SPAN_S: Final = 1.0
"""A chunk holds at most this much event time, as the live monitor feeds the engine
(:func:`monitor.engine.time_slices`)."""
MAX_REPORTED_ERRORS: Final = 50


@dataclass(slots=True)
class ReplaySummary:
    events: int = 0
    lines: int = 0
    bad_lines: int = 0
    late: int = 0
    errors: list[str] = field(default_factory=list)
    """The first bad lines, ``line N: reason``."""
    incidents: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    """Wall-clock time the replay took."""
    span_s: float = 0.0
    """Event time the replay covered (first to last event)."""

    @property
    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(i["kind"] for i in self.incidents).items()))

    def text(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in self.by_kind.items()) or "none"
        return (
            f"replay: {self.events} events from {self.lines} lines "
            f"({self.bad_lines} bad, {self.late} late); "
            f"{len(self.incidents)} incidents opened: {kinds}; {self.speed()}"
        )

    def speed(self) -> str:
        wall = max(self.seconds, 1e-9)
        return (
            f"{self.seconds:.1f} s, {self.events / wall:,.0f} events/s, "
            f"{self.span_s / 86_400 / wall:.2f} simulated days/s"
        )


def read_events(stream: IO[str], summary: ReplaySummary) -> Iterator[Event]:
    """Validated events of a JSON Lines stream; bad lines are recorded in ``summary``."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        summary.lines += 1
        try:
            event = validate_event(json.loads(line), number)
        except json.JSONDecodeError as exc:
            _bad(summary, number, f"not valid JSON: {exc.msg}")
            continue
        except InvalidEvent as exc:
            _bad(summary, number, exc.error.error)
            continue
        yield event


def _bad(summary: ReplaySummary, number: int, reason: str) -> None:
    summary.bad_lines += 1
    if len(summary.errors) < MAX_REPORTED_ERRORS:
        summary.errors.append(f"line {number}: {reason}")


async def replay(
    source: Path,
    out: Path,
    *,
    redis: Any,
    config: Config,
    rules: Any = None,
    engine: Engine | None = None,
) -> ReplaySummary:
    """Replay ``source`` into ``redis`` (expected empty) and write the incidents to ``out``."""
    if engine is None:
        engine = build_engine(config, rules)
        engine.on_signals = None  # no board rows in a replay
    store = IncidentStore(redis)
    applier = ActionApplier(store)
    summary = ReplaySummary()
    began = time.perf_counter()
    first: float | None = None
    with source.open(encoding="utf-8") as stream:
        for chunk in time_slices(read_events(stream, summary), CHUNK_SPAN_S, CHUNK):
            if first is None:
                first = chunk[0].ts
            await applier.apply(engine.process(chunk))
    await applier.apply(engine.flush())
    summary.seconds = time.perf_counter() - began
    summary.span_s = 0.0 if first is None else engine.max_ts - first
    summary.events = engine.stats.events
    summary.late = engine.stats.late_events
    for incident_id in applier.created:
        summary.incidents.append((await store.get(incident_id)).to_dict())
    summary.incidents.sort(key=lambda i: (i["opened_at"], i["id"]))
    with out.open("w", encoding="utf-8") as sink:
        for incident in summary.incidents:
            sink.write(json.dumps(incident, ensure_ascii=False, sort_keys=True) + "\n")
    return summary
