"""Live event time of the simulator: scenario time compressed by speed, never behind the clock.

A scenario is generated in scenario time (one event second per second) with its
pre-rolled history ending at the *anchor*, the wall-clock moment the demo
starts. Live, every event is stamped ``anchor + (t - anchor) / speed``: the
history ends at the anchor and each paced second is stamped with the very
moment it is due, at any speed (at ``--speed 4`` four scenario seconds pass per
second, rates included, in history and paced part alike, so baselines and
traffic agree). A monitor in live mode treats anything behind its wall clock by
more than its lateness as late, so when the paced part starts behind schedule
(the stack took a while to start, the process was paused) the rest of the run
shifts forward by the lag instead of sending stale events: the gap shows as a
quiet moment, never as late traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

MAX_BEHIND_S: Final = 1.0
"""A paced second due more than this long ago shifts the rest of the run (catch-up)."""


@dataclass(slots=True)
class LiveTime:
    """Scenario time -> live event time for one run."""

    anchor: float
    """Wall-clock moment the pre-rolled history ends (scenario time equals it there)."""
    speed: float = 1.0
    shift: float = 0.0
    """Seconds the paced part was moved forward because it started late."""

    def stamp(self, scenario_ts: float) -> float:
        return self.anchor + (scenario_ts - self.anchor) / self.speed + self.shift

    def due(self, paced_s: float) -> float:
        """Wall-clock moment the paced second ``paced_s`` is due (and stamped with)."""
        return self.anchor + paced_s / self.speed + self.shift

    def catch_up(self, paced_s: float, now: float) -> float:
        """Shift the rest of the run when ``paced_s`` is overdue; return its due time."""
        late = now - self.due(paced_s)
        if late > MAX_BEHIND_S:
            self.shift += late
        return self.due(paced_s)

    def restamp(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.speed == 1.0 and self.shift == 0.0:
            return events
        return [{**e, "ts": round(self.stamp(float(e["ts"])), 3)} for e in events]


def history_start(anchor: float, unpaced_s: float, speed: float) -> float:
    """Live event time of the first history event of a run anchored at ``anchor``."""
    return anchor - unpaced_s / speed
