"""The collector's clock window: events stamped too far from its own clock are refused.

A producer whose clock is wrong (a PBX in the wrong time zone, milliseconds sent
as seconds, a curl example with a fixed date) must not steer the engine's event
time. The collector compares each event's ``ts`` with its own wall clock and
refuses, per event, what lies more than ``max_ahead_s`` ahead or ``max_behind_s``
behind it; the error names the index, the field ``ts``, the skew and the window,
and the valid events of the same batch are kept. Events the collector builds
itself (probes, heartbeats) are stamped with its clock and never checked.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from watchfloor.core.events import BatchResult, FieldError


@dataclass(frozen=True, slots=True)
class ClockWindow:
    max_ahead_s: float = 30.0
    max_behind_s: float = 6 * 3600.0

    def check(self, checked: BatchResult, now: float | None = None) -> Counter[tuple[str, str]]:
        """Move the events outside the window from ``checked.events`` to its errors.

        Returns the refusals counted by (source, "ahead" | "behind").
        """
        now = time.time() if now is None else now
        refused: Counter[tuple[str, str]] = Counter()
        stamps = [event.ts for event in checked.events]
        if not stamps or (
            min(stamps) >= now - self.max_behind_s and max(stamps) <= now + self.max_ahead_s
        ):
            return refused  # the usual case: one pass in C over the whole batch
        keep, where = [], []
        for event, index in zip(checked.events, checked.indexes, strict=True):
            skew = event.ts - now
            if -self.max_behind_s <= skew <= self.max_ahead_s:
                keep.append(event)
                where.append(index)
                continue
            direction = "ahead" if skew > 0 else "behind"
            refused[(event.source, direction)] += 1
            checked.errors.append(FieldError(index, "ts", self._reason(abs(skew), direction)))
        if refused:
            checked.events, checked.indexes = keep, where
            checked.errors.sort(key=lambda error: error.index)
        return refused

    def _reason(self, skew: float, direction: str) -> str:
        where = "ahead of" if direction == "ahead" else "behind"
        return (
            f"ts is {skew:.0f} s {where} the collector's clock; the window is "
            f"-{self.max_behind_s:g} s .. +{self.max_ahead_s:g} s"
        )
