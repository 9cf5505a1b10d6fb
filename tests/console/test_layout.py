"""The board's tiles are sized from what they hold: every incident and run is on screen when there
is room, the short lists whole when there is not, side by side from 140 cells on."""

from __future__ import annotations

import pytest

from tests.console.samples import incident, run, snapshot
from tests.console.screen_text import screen_text
from watchfloor.console.app import ConsoleApp
from watchfloor.console.messages import LiveConnected, SnapshotReceived
from watchfloor.console.screens.board import fit_heights


@pytest.mark.parametrize(("needs", "total", "heights"), [
    ([5, 8, 4], 30, [18, 8, 4]),     # room for all: the rest to the first (incidents)
    ([5, 40, 4], 30, [5, 21, 4]),    # one long list: the short ones whole, the long one the rest
    ([40, 40, 4], 30, [13, 13, 4]),  # two long lists share fairly
    ([40, 40, 40], 9, [3, 3, 3]),    # never under the minimum
    ([2, 2], 10, [7, 3]),      # a need under the minimum gets the minimum
])  # fmt: skip
def test_lines_are_shared_so_short_lists_stay_whole(needs, total, heights) -> None:
    assert fit_heights(needs, total, minimum=3) == heights


def busy_snapshot(incidents: int, runs: int, queues: int = 6) -> dict:
    message = snapshot(queues)
    message["incidents"] = [
        incident(
            f"INC-{i}",
            "major",
            title=f"Contact surge on queue {i}: 3.1x baseline (41 offered in 5 min, 13 expected)",
            subject=f"q{i}",
        )
        for i in range(incidents)
    ]
    message["runs"] = [run(f"RUN-{i}", f"INC-{i}") for i in range(runs)]
    return message


@pytest.mark.parametrize("size", [(120, 36), (200, 50), (80, 30)])
async def test_every_incident_and_run_is_on_screen_when_there_is_room(size) -> None:
    app = ConsoleApp(None)
    async with app.run_test(size=size) as pilot:
        app.post_message(LiveConnected())
        app.post_message(SnapshotReceived(busy_snapshot(incidents=7, runs=3)))
        await pilot.pause(0.3)
        text = screen_text(app)
        for i in range(7):
            assert f"queue {i}:" in text, (size, i)
        assert text.count("Contact surge  ") + text.count("Contact surge ") >= 3
        for name in ("售前咨询", "after-sales", "phone-vip", "email-general", "退货退款"):
            assert name in text


async def test_at_80_by_24_a_long_incident_list_leaves_the_queues_and_runs_whole() -> None:
    app = ConsoleApp(None)
    async with app.run_test(size=(80, 24)) as pilot:
        app.post_message(LiveConnected())
        app.post_message(SnapshotReceived(busy_snapshot(incidents=30, runs=2, queues=4)))
        await pilot.pause(0.3)
        text = screen_text(app)
        for name in ("售前咨询", "after-sales", "phone-vip", "email-general"):
            assert name in text
        assert "queue 0:" in text and "queue 29:" not in text
        lines = [ln for ln in text.splitlines() if "▰" in ln or "▱" in ln]
        assert len(lines) == 2


async def test_from_140_cells_the_incidents_sit_right_of_the_queues() -> None:
    app = ConsoleApp(None)
    async with app.run_test(size=(200, 50)) as pilot:
        app.post_message(LiveConnected())
        app.post_message(SnapshotReceived(busy_snapshot(incidents=3, runs=1)))
        await pilot.pause(0.3)
        queues = app.screen.query_one("#tile-queues").region
        incidents = app.screen.query_one("#tile-incidents").region
        runs = app.screen.query_one("#tile-runs").region
        assert incidents.x >= queues.right and incidents.y == queues.y
        assert runs.x == queues.x and runs.y >= queues.bottom
        assert incidents.bottom == runs.bottom
