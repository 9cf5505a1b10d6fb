"""A service slow to stop says what it still waits on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from watchfloor.stop_watch import report_slow_stop


async def waits_for_nothing(never: asyncio.Event) -> None:
    await never.wait()


async def test_a_slow_stop_logs_each_task_still_running_and_where_it_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop, never = asyncio.Event(), asyncio.Event()
    stuck = asyncio.create_task(waits_for_nothing(never), name="stuck-part")
    watch = asyncio.create_task(report_slow_stop(stop, after_s=0.05))
    with caplog.at_level(logging.WARNING, logger="watchfloor.stop_watch"):
        await asyncio.sleep(0.1)
        assert not caplog.records  # nothing to say before the stop
        stop.set()
        await asyncio.wait_for(watch, 2)
    [record] = caplog.records
    text = record.getMessage()
    assert "still stopping after 0s" in text
    assert "task stuck-part (pending)" in text
    assert "in waits_for_nothing" in text  # down the chain of awaits...
    assert "locks.py" in text and "in wait" in text  # ...to the Event.wait it is in
    assert "waiting on <Future pending" in text
    stuck.cancel()


async def test_a_prompt_stop_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    watch = asyncio.create_task(report_slow_stop(stop, after_s=0.2))
    with caplog.at_level(logging.WARNING, logger="watchfloor.stop_watch"):
        stop.set()
        await asyncio.sleep(0.05)
        watch.cancel()  # what run_service does once the service returned
        await asyncio.gather(watch, return_exceptions=True)
    assert not caplog.records
