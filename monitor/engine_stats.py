"""The engine's counters: events, late arrivals, and the events it could not place.

An event is *unplaced* when the engine cannot put it in time: stamped further
ahead of the wall clock than ``monitor.max_ahead_s`` (``ahead``), behind the
watermark by more than ``monitor.late_horizon_s`` (``too_late``), older than every
window a detector would put it in (``window_gone``), or dropped from
a checkpoint whose clock had run ahead (``checkpoint_ahead``). They are counted
per source and reason, never silently: the status, ``/healthz``, ``/metrics`` and
the console's health strip show them.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from watchfloor.core.events import Event

MAX_SOURCES: Final = 500
"""Distinct sources counted by name; the rest are counted together (bounded memory)."""
OTHER_SOURCES: Final = "(other)"


@dataclass(slots=True)
class EngineStats:
    """Counters reported in the engine status (and kept in the checkpoint)."""

    events: int = 0
    late_events: int = 0
    late_by_type: Counter[str] = field(default_factory=Counter)
    recent_late: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))
    late_folded: int = 0
    """Late events still evaluated (within the late horizon)."""
    unplaced: dict[str, Counter[str]] = field(default_factory=dict)
    """Source -> reason -> events the engine could not place."""
    recent_unplaced: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))
    checkpoint_repairs: int = 0
    evaluations: int = 0
    detector_errors: int = 0

    def count_unplaced(self, event: Event, reason: str, off_s: float) -> None:
        source = event.source
        if source not in self.unplaced and len(self.unplaced) >= MAX_SOURCES:
            source = OTHER_SOURCES
        self.unplaced.setdefault(source, Counter())[reason] += 1
        self.recent_unplaced.append(
            {"type": event.type, "source": event.source, "ts": event.ts, "reason": reason,
             "off_s": round(off_s, 3)}
        )  # fmt: skip

    @property
    def unplaced_total(self) -> int:
        return sum(sum(c.values()) for c in self.unplaced.values())

    def to_map(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "late_events": self.late_events,
            "late_by_type": dict(self.late_by_type),
            "recent_late": list(self.recent_late),
            "late_folded": self.late_folded,
            "unplaced": {s: dict(c) for s, c in self.unplaced.items()},
            "recent_unplaced": list(self.recent_unplaced),
            "checkpoint_repairs": self.checkpoint_repairs,
            "evaluations": self.evaluations,
            "detector_errors": self.detector_errors,
        }

    @classmethod
    def from_map(cls, data: Mapping[str, Any]) -> EngineStats:
        stats = cls(
            events=int(data.get("events", 0)),
            late_events=int(data.get("late_events", 0)),
            late_folded=int(data.get("late_folded", 0)),
            checkpoint_repairs=int(data.get("checkpoint_repairs", 0)),
            evaluations=int(data.get("evaluations", 0)),
            detector_errors=int(data.get("detector_errors", 0)),
        )
        stats.late_by_type.update(data.get("late_by_type", {}))
        stats.recent_late.extend(data.get("recent_late", []))
        for source, reasons in data.get("unplaced", {}).items():
            stats.unplaced[source] = Counter(reasons)
        stats.recent_unplaced.extend(data.get("recent_unplaced", []))
        return stats
