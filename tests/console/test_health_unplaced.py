"""The health tile says when the engine could not place events, naming the worst sources."""

from __future__ import annotations

import json

from tests.console.samples import snapshot
from watchfloor.console.app import ConsoleApp
from watchfloor.console.messages import LiveConnected, SnapshotReceived
from watchfloor.console.widgets.health_strip import HealthStrip


async def show(engine: dict) -> str:
    app = ConsoleApp(None)
    async with app.run_test(size=(160, 30)) as pilot:
        app.post_message(LiveConnected())
        app.post_message(SnapshotReceived({**snapshot(2), "engine": engine}))
        await pilot.pause(0.2)
        return str(app.screen.query_one(HealthStrip).render())


async def test_unplaced_events_are_shown_with_their_worst_sources() -> None:
    unplaced = {"pbx-wrong-tz": {"ahead": 7}, "im": {"too_late": 2}, "crm": {"too_late": 1}}
    text = await show({"lag_s": 0.4, "unplaced_total": 10, "unplaced": json.dumps(unplaced)})
    assert "unplaced events 10 (pbx-wrong-tz 7, im 2, crm 1)" in text


async def test_nothing_is_said_while_every_event_was_placed() -> None:
    text = await show({"lag_s": 0.4, "unplaced_total": 0, "unplaced": "{}"})
    assert "unplaced" not in text
