"""How far the idle clock may go: never past events a collector acknowledged but not wrote.

Each collector reports in ``keys.COLLECTORS`` (field = its id, value = msgpack
``{"written_until": float, "at": float}``) the wall-clock moment before which
everything it answered 202 is in the stream, and when it said so. When the
stream is idle the monitor's wall-clock tick stops at the smallest
``written_until`` of the collectors that reported within ``fresh_s``: a collector
that stalled (GC pause, SIGSTOP, a slow disk) holds time back until it writes
what it acknowledged, so those events are on time, not late. A collector silent
for longer is presumed gone; its events, if they ever come, take the engine's
late path (evaluated within ``monitor.late_horizon_s``).
"""

from __future__ import annotations

import logging
from typing import Any

import msgpack

from watchfloor.core import keys

logger = logging.getLogger(__name__)


def bound_from(reports: dict[Any, Any], now: float, fresh_s: float) -> float | None:
    """The smallest ``written_until`` among fresh reports (None: no collector holds time)."""
    bound: float | None = None
    for collector, raw in reports.items():
        try:
            report = msgpack.unpackb(raw, raw=False)
            written, at = float(report["written_until"]), float(report["at"])
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            logger.warning("unreadable collector report collector=%r", collector)
            continue
        if now - at > fresh_s:
            continue
        bound = written if bound is None else min(bound, written)
    return bound


async def idle_clock(redis: Any, now: float, fresh_s: float) -> float:
    """``now``, held back to what every live collector has written."""
    bound = bound_from(await redis.hgetall(keys.COLLECTORS), now, fresh_s)
    return now if bound is None else min(now, bound)
