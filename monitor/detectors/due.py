"""When a detector's answer may next change with no new event: helpers for ``next_due``.

In a replay the engine jumps over evaluations whose answer would be empty and
would change nothing (:mod:`monitor.engine`). A detector names the earliest
event time after ``at`` at which its answer may change (``next_due(at)``), or
None when only a new event can change it. Early is always safe (an extra
evaluation is one the second-by-second reference makes too); late is not.
Detectors judge on a grid of their own (a bucket, a tick): a due time is
rounded up to that grid, where the detector's next scan happens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from watchfloor.monitor.windows import Ring

__all__ = ["STRICT", "earliest", "filled", "grid_after", "window_changes"]

STRICT = 1e-3
"""Added to a deadline whose condition is strict (``w - t > limit``): due just after it."""


def grid_after(t: float, at: float, step: float) -> float:
    """The first multiple of ``step`` at or after ``t`` and strictly after ``at``."""
    on_grid = math.ceil(t / step - 1e-9) * step
    following = (math.floor(at / step + 1e-9) + 1) * step
    return max(on_grid, following)


def earliest(times: Iterable[float | None]) -> float | None:
    """The smallest of ``times`` (None entries ignored); None when there is none."""
    found = [t for t in times if t is not None]
    return min(found) if found else None


def window_changes(
    buckets: Iterable[int], bucket_s: float, spans: Iterable[int], at: float
) -> float | None:
    """Earliest time after ``at`` at which a window over complete buckets changes.

    A window of ``k`` complete buckets at watermark ``w`` holds bucket ``b`` for
    ``(b + 1) bucket_s <= w < (b + k + 1) bucket_s``: its sum changes only when a
    non-empty bucket (``buckets``) enters or leaves it.
    """
    ordered = sorted(buckets)
    limit = at / bucket_s
    due: float | None = None
    for k in (0, *spans):  # 0: the bucket completes and enters
        for b in ordered:  # the first bucket whose change is still ahead
            if b + k + 1 > limit:
                t = (b + k + 1) * bucket_s
                due = t if due is None or t < due else due
                break
    return due


def filled(ring: Ring) -> list[int]:
    """Indexes of the ring's buckets holding anything (any field)."""
    n, w, values = ring.n, ring.width, ring.values
    if w == 1:
        return [b for b in range(ring.head - n + 1, ring.head + 1) if values[b % n]]
    return [
        b
        for b in range(ring.head - n + 1, ring.head + 1)
        if any(values[(b % n) * w : (b % n + 1) * w])
    ]
