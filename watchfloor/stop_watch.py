"""Says what a service is still waiting on when it is slow to stop.

A service stops cooperatively: SIGTERM sets its stop event and every part finishes its
work (a last checkpoint, a last audit pass, deliveries in flight). When that takes longer
than ``after_s``, something is waiting on what will not come; the log then names every
task still running and where it waits, once, so the operator (or the supervisor's log)
has the answer instead of a process that just hangs.
"""

from __future__ import annotations

import asyncio
import io
import logging

logger = logging.getLogger(__name__)

REPORT_AFTER_S = 8.0
"""Longer than any part's own bounded drain (deliveries 10 s run in parallel with it, the
API's 5 s), short enough to be in the log before a supervisor's or a test's patience ends."""


async def report_slow_stop(stop: asyncio.Event, after_s: float = REPORT_AFTER_S) -> None:
    """Once ``stop`` is set, wait ``after_s``; if still running then, log every task's stack."""
    await stop.wait()
    await asyncio.sleep(after_s)
    logger.warning("still stopping after %.0fs; waiting on:\n%s", after_s, tasks_text())


def tasks_text() -> str:
    """Every other task of the running loop with the stack where it waits."""
    out = io.StringIO()
    me = asyncio.current_task()
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        if task is me:
            continue
        out.write(f"- task {task.get_name()}: {task.get_coro()!r}\n")
        task.print_stack(limit=12, file=out)
    return out.getvalue()
