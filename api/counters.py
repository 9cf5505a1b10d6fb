"""What the monitor API counts for ``/metrics``: requests and the live feed's traffic.

A module of its own, below :mod:`api.state` and :mod:`api.hub`, because both hold it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class ApiMetrics:
    """Counters exposed on ``/metrics`` (one process, no locking needed)."""

    started: float = field(default_factory=time.time)
    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    live_resyncs: int = 0
    live_changes: int = 0
    live_snapshots: int = 0

    def count_request(self, method: str, route: str, status: int) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
