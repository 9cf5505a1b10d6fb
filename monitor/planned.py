"""Planned events and queue merges announced in the rules file.

A promotion the site plans (a Double 11 presale opening, a live-stream sale) is
not a surge, and a queue whose intake moves into another one (a merged email
queue) is not a silence followed by a surge. The rules file says so in advance:

```toml
[[planned]]
name = "Double 11 presale opening"
queues = ["presale-chat"]          # and / or channels = ["chat"]
start = 2026-11-11T00:00:00+08:00  # a TOML date-time with its offset, or Unix seconds
end = 2026-11-11T02:00:00+08:00
factor = 5.0                       # traffic expected at 5x the usual

[[merged]]
queue = "aftersale-email"          # its intake moves ...
into = "aftersale-chat"            # ... into this queue
at = 2026-11-20T09:00:00+08:00
```

During a planned event (and while the surge window still reaches into it) the
surge detector expects ``factor`` x the baseline, and no baseline learns from
it. From a merge on, the merged queue is no longer judged (its silence is the
merge) and its baseline is added to the receiving queue's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "CALENDAR_SECTIONS",
    "Calendar",
    "Merge",
    "Planned",
    "check_calendar",
    "merges",
    "planned",
]

CALENDAR_SECTIONS = ("planned", "merged")


@dataclass(frozen=True, slots=True)
class Planned:
    name: str
    queues: tuple[str, ...]
    channels: tuple[str, ...]
    start: float
    end: float
    factor: float

    def covers(self, queue: str | None, channel: str | None) -> bool:
        return (queue is not None and queue in self.queues) or (
            channel is not None and channel in self.channels
        )


@dataclass(frozen=True, slots=True)
class Merge:
    queue: str
    into: str
    at: float


def _ts(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo is not None else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def planned(document: Mapping[str, Any]) -> list[Planned]:
    """The ``[[planned]]`` events of a validated rules document."""
    out = []
    for item in document.get("planned") or ():
        out.append(
            Planned(
                name=str(item["name"]),
                queues=tuple(item.get("queues", ())),
                channels=tuple(item.get("channels", ())),
                start=_ts(item["start"]) or 0.0,
                end=_ts(item["end"]) or 0.0,
                factor=float(item.get("factor", 1.0)),
            )
        )
    return out


def merges(document: Mapping[str, Any]) -> list[Merge]:
    """The ``[[merged]]`` queues of a validated rules document, oldest first."""
    found = [
        Merge(str(m["queue"]), str(m["into"]), _ts(m["at"]) or 0.0)
        for m in document.get("merged") or ()
    ]
    return sorted(found, key=lambda m: m.at)


def check_calendar(key: str, value: Any) -> list[str]:
    """Every problem of a ``[[planned]]`` or ``[[merged]]`` array, each naming its entry."""
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        return [f"{key}: must be an array of tables ([[{key}]])"]
    check = _check_planned if key == "planned" else _check_merged
    return [f"{key}[{i}].{problem}" for i, item in enumerate(value) for problem in check(item)]


def _check_planned(item: Mapping[str, Any]) -> list[str]:
    errors = _unknown(item, {"name", "queues", "channels", "start", "end", "factor"})
    if not isinstance(item.get("name"), str):
        errors.append("name: must be a string")
    for names in ("queues", "channels"):
        value = item.get(names, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors.append(f"{names}: must be a list of strings")
    if not item.get("queues") and not item.get("channels"):
        errors.append("queues: name at least one queue or channel")
    start, end = _ts(item.get("start")), _ts(item.get("end"))
    for name, ts in (("start", start), ("end", end)):
        if ts is None:
            errors.append(f"{name}: must be a date-time with its offset or Unix seconds")
    if start is not None and end is not None and end <= start:
        errors.append("end: must be after start")
    factor = item.get("factor", 1.0)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1:
        errors.append("factor: must be a number >= 1")
    return errors


def _check_merged(item: Mapping[str, Any]) -> list[str]:
    errors = _unknown(item, {"queue", "into", "at"})
    for name in ("queue", "into"):
        if not isinstance(item.get(name), str):
            errors.append(f"{name}: must be a string")
    if item.get("queue") == item.get("into"):
        errors.append("into: must be another queue")
    if _ts(item.get("at")) is None:
        errors.append("at: must be a date-time with its offset or Unix seconds")
    return errors


def _unknown(item: Mapping[str, Any], known: set[str]) -> list[str]:
    return [f"{key}: unknown key" for key in item if key not in known]


class Calendar:
    """The planned events and merges of a rules document, for one detector's use."""

    __slots__ = ("applied", "events", "merges")

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.events = planned(document)
        self.merges = merges(document)
        self.applied: set[str] = set()
        """Merges already applied (``queue>into``), kept in the detector's checkpoint."""

    def factor(self, queue: str | None, channel: str | None, lo: float, hi: float) -> float:
        """Traffic expected over ``lo..hi`` as a multiple of the usual (1.0: nothing planned)."""
        found = [
            e.factor
            for e in self.events
            if e.covers(queue, channel) and e.start < hi and e.end > lo
        ]
        return max(found, default=1.0)

    def spans(self, queue: str | None, channel: str | None) -> list[tuple[float, float]]:
        """``(start, end)`` of the events planned for a subject (never learned)."""
        return [(e.start, e.end) for e in self.events if e.covers(queue, channel)]

    def retired(self, queue: str, ts: float) -> bool:
        """A queue merged into another at or before ``ts``: its own intake is no news."""
        if not self.merges:  # asked for every contact: most sites merge nothing
            return False
        return any(m.queue == queue and m.at <= ts for m in self.merges)

    def take_due(self, until: float) -> list[Merge]:
        """The merges due by ``until`` not applied yet (now marked applied)."""
        due = [m for m in self.merges if m.at <= until and _key(m) not in self.applied]
        self.applied.update(_key(m) for m in due)
        return due

    def next_merge(self) -> float | None:
        """When the next merge not applied yet is due."""
        waiting = [m.at for m in self.merges if _key(m) not in self.applied]
        return min(waiting, default=None)


def _key(merge: Merge) -> str:
    return f"{merge.queue}>{merge.into}"
