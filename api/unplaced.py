"""Events the engine could not place, as ``/healthz`` problems and ``/metrics`` counts.

The engine status (``keys.ENGINE_STATUS``) carries ``unplaced`` (JSON: source ->
reason -> count) and ``unplaced_at`` (wall clock of the last increase). A
non-zero count is a problem on ``/healthz`` while it is recent
(:data:`RECENT_S`); ``/metrics`` always has the counters (:mod:`api.metrics_export`
reads :func:`unplaced_counts`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

RECENT_S: Final = 900.0
"""Unplaced events within this long (wall clock) make ``/healthz`` say ``degraded``."""
MAX_NAMED: Final = 5


def unplaced_counts(engine: dict[str, Any]) -> dict[str, dict[str, int]]:
    """source -> reason -> count from the engine status (empty when unreadable)."""
    raw = engine.get("unplaced")
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(source): {str(r): int(n) for r, n in reasons.items() if isinstance(n, int)}
        for source, reasons in data.items()
        if isinstance(reasons, dict)
    }


def unplaced_problems(engine: dict[str, Any], now: float | None = None) -> list[str]:
    """One problem line naming the worst sources, when events were unplaced recently."""
    at = engine.get("unplaced_at")
    counts = unplaced_counts(engine)
    if not counts or not isinstance(at, int | float) or at <= 0:
        return []
    if (time.time() if now is None else now) - at > RECENT_S:
        return []
    per_source = sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))
    named = ", ".join(
        f"{source} ({', '.join(f'{n} {reason}' for reason, n in sorted(reasons.items()))})"
        for source, reasons in per_source[:MAX_NAMED]
    )
    more = f" and {len(per_source) - MAX_NAMED} more sources" if len(per_source) > MAX_NAMED else ""
    total = sum(sum(r.values()) for r in counts.values())
    return [f"engine could not place {total} events: {named}{more}"]
