"""The ``wait`` action: the step completes by itself after a duration.

The runner does not sleep: it puts a durable timer in ``wf:runs:timers`` due at
``ready + duration``, so a wait survives a restart of the monitor.
"""

from __future__ import annotations

from typing import Any

from watchfloor.playbooks.schema import parse_duration


def wait_seconds(action: dict[str, Any]) -> float:
    """Seconds a ``wait`` action lasts (0 when the duration is unreadable)."""
    return parse_duration(action.get("duration")) or 0.0
