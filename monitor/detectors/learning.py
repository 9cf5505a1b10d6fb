"""Baselines that do not learn the problem: a ring whose baselines skip paused spans.

A trend baseline that learns from a silence expects less afterwards (normal
traffic then looks like a surge); one that learns from a surge or a planned
promotion expects more (the next real surge is measured against it). A
:class:`GatedRing` is a :class:`~monitor.windows.Ring` whose baselines never
get the buckets of a paused span: the detector pauses a span while its subject
is silent, has an open incident or is inside a planned event, and the baseline
keeps its level (and slope) over it. The buckets stay readable as usual.

Spans are bucket indexes, kept open (no end yet) while the condition holds, so
they do not depend on how often the detector looked: a replay that skips quiet
evaluations pauses the same buckets. A baseline gets a bucket only once it is
older than the window (the ring's lag), so a span opened when a problem is
found still covers its first buckets.
"""

from __future__ import annotations

import math
from typing import Any

from watchfloor.monitor.windows import Ring

__all__ = ["GatedRing"]

OPEN = math.inf


class GatedRing(Ring):
    """A :class:`Ring` whose baselines skip the paused spans of buckets."""

    __slots__ = ("paused",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paused: list[list[float]] = []
        """``[first, last]`` bucket indexes never learned (last ``inf``: still open)."""

    def pause(self, start_ts: float, end_ts: float = OPEN) -> None:
        """Never learn the buckets from ``start_ts`` to ``end_ts`` (open: until :meth:`resume`)."""
        first = float(int(start_ts // self.bucket_s))
        last = end_ts if end_ts == OPEN else float(int(end_ts // self.bucket_s))
        if self.paused and self.paused[-1][1] == OPEN and first >= self.paused[-1][0]:
            self.paused[-1][1] = max(self.paused[-1][1], last)
            return
        self.paused.append([first, last])
        self.paused.sort()

    def resume(self, end_ts: float) -> None:
        """Close the open span at ``end_ts`` (its bucket is the last one skipped)."""
        last = float(int(end_ts // self.bucket_s))
        for span in self.paused:
            if span[1] == OPEN:
                span[1] = max(span[0], last)

    def pausing(self) -> bool:
        """Whether a span is open."""
        return any(span[1] == OPEN for span in self.paused)

    def _feed_until(self, last: int) -> None:
        start = self.first if self.fed_to is None else self.fed_to + 1
        for first, end in self.paused:
            if end < start:
                continue
            if first > last:
                break
            if first > start:
                super()._feed_until(min(int(first) - 1, last))
            skipped = last if end == OPEN else min(int(end), last)
            self.fed_to = max(self.fed_to if self.fed_to is not None else skipped, skipped)
            start = self.fed_to + 1
        if start <= last:
            super()._feed_until(last)
        fed = self.fed_to if self.fed_to is not None else -1
        self.paused = [span for span in self.paused if span[1] > fed]

    def paused_state(self) -> list[list[float]]:
        return [list(span) for span in self.paused]

    def restore_paused(self, state: Any) -> None:
        self.paused = [[float(a), float(b)] for a, b in state or ()]
