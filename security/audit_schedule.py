"""The checkpoint schedule, checked by the verifier: a deleted checkpoint leaves a gap.

The monitor signs a checkpoint at every ``checkpoint_every``-th record after the
previous one, and over whatever is new every ``checkpoint_interval_s`` (and
when it starts and stops). So, in a log nobody touched, no run of more than
``every`` records lacks a checkpoint, and no record waits more than
``interval_s`` (plus a grace for the monitor's tick and clock differences
between writers) for one. :class:`ScheduleWatch` follows the verifier's walk
and names the first record left uncovered longer than that: a deleted
``checkpoints.jsonl`` (or a deleted line of it) fails instead of shrinking what
is proved in silence. A monitor that was down while others kept appending
leaves such a gap honestly; the message says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Schedule:
    every: int
    """Records between two checkpoints at most (``security.checkpoint_every``)."""
    interval_s: float
    """Seconds a record waits for a checkpoint at most (``security.checkpoint_interval_s``)."""
    grace_s: float = 10.0
    """Allowance for the monitor's tick and the writers' clocks."""


def seconds(at: Any) -> float | None:
    """Unix seconds of a record or checkpoint ``at`` (RFC 3339), None when unreadable."""
    if not isinstance(at, str):
        return None
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class ScheduleWatch:
    """Fed every record and every verified checkpoint in order; returns what breaks the schedule."""

    def __init__(self, schedule: Schedule, start: int = 0) -> None:
        self.schedule = schedule
        self.last_size = start
        self.first: tuple[int, float] | None = None
        """Seq and time of the first record no checkpoint covers yet."""

    def _why(self, upto: int, span: float | None) -> str:
        s = self.schedule
        spread = f" over {span:.0f} s" if span is not None else ""
        return (
            f"checkpoint missing: records {self.last_size + 1}..{upto} were appended{spread} "
            f"without a signed checkpoint, but the schedule signs every {s.every} records or "
            f"{s.interval_s:.0f} s (a checkpoint was removed, or no monitor was signing then)"
        )

    def record(self, seq: int, at: Any) -> tuple[int, str] | None:
        """(first uncovered seq, reason) when record ``seq`` shows a checkpoint is missing."""
        t = seconds(at)
        if self.first is None:
            self.first = (seq, t if t is not None else float("nan"))
        if seq - self.last_size > self.schedule.every:
            return self.last_size + 1, self._why(seq, None)
        span = (t - self.first[1]) if t is not None else None
        if span is not None and span > self.schedule.interval_s + self.schedule.grace_s:
            return self.first[0], self._why(seq, span)
        return None

    def checkpoint(self, size: int, at: Any) -> tuple[int, str] | None:
        """A verified checkpoint at ``size``: late for the first record it covers?"""
        t = seconds(at)
        problem = None
        if self.first is not None and t is not None:
            span = t - self.first[1]
            if span > self.schedule.interval_s + self.schedule.grace_s:
                problem = self.first[0], self._why(size, span)
        self.first, self.last_size = None, max(self.last_size, size)
        return problem
