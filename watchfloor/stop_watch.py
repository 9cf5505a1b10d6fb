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
from typing import Any

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
    """Every other task of the running loop with the chain of awaits where it waits, down to
    the future it is waiting for (a task's own stack stops at its first frame)."""
    out = io.StringIO()
    me = asyncio.current_task()
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        if task is me:
            continue
        state = "cancelling" if task.cancelling() else "pending"
        out.write(f"- task {task.get_name()} ({state})\n")
        for line in await_chain(task.get_coro()):
            out.write(f"    {line}\n")
        # asyncio's own record of the future the task is suspended on (no public name)
        waiter = getattr(task, "_fut_waiter", None)
        if waiter is not None:
            out.write(f"    waiting on {waiter!r}"[:400] + "\n")
    return out.getvalue()


def await_chain(coro: Any) -> list[str]:
    """``file:line in function`` for each coroutine ``coro`` awaits, innermost last."""
    lines: list[str] = []
    current = coro
    for _ in range(64):  # a chain is a few dozen deep at most; never loop on a cycle
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            break
        lines.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    return lines
