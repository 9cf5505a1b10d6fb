"""The history screen (``i``): resolved incidents are found by text and kind and opened."""

from __future__ import annotations

from tests.console.conftest import ConsoleApi, console_for, feed_board, wait_until
from tests.console.screen_text import screen_text
from watchfloor.console.screens.history import HistoryScreen, search_params
from watchfloor.console.screens.incident import IncidentScreen


async def test_a_resolved_incident_is_found_searched_and_opened_from_history(
    console_api: ConsoleApi,
) -> None:
    await feed_board(console_api)
    old = await console_api.fire("热线", "major", kind="sla", rule="sla.queue",
                                 title="Longest wait on 热线", evidence={"waiting": 9})  # fmt: skip
    await console_api.fire("售前咨询", "critical", kind="surge", rule="surge.offered",
                           title="Contact surge on 售前咨询", evidence={"ratio": 3.0})  # fmt: skip
    await console_api.incidents.resolve(old.id, actor="duty")
    app = console_for(console_api, "duty_manager", lang="zh")
    async with app.run_test(size=(140, 36)) as pilot:
        await wait_until(pilot, lambda: len(app.board.incidents) == 1, "board")
        assert "热线" not in screen_text(app)  # the board lists open incidents only
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await wait_until(pilot, lambda: len(screen.incidents) == 2, "history")
        text = screen_text(app)
        assert "历史事件" in text and "已解决" in text and "售前咨询 进线激增" in text
        await pilot.press("slash")
        for key in "热线":
            await pilot.press(key)
        await pilot.press("enter")
        await wait_until(pilot, lambda: [i["id"] for i in screen.incidents] == [old.id], "q")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen), "opened")
        assert app.screen.incident_id == old.id  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "back to history")
        screen.search("kind:surge")
        await wait_until(pilot, lambda: [i["kind"] for i in screen.incidents] == ["surge"], "kind")


def test_search_words_become_the_lists_filters() -> None:
    params = search_params("热线 kind:sla since:1700000000 wait")
    assert params == {"state": "all", "limit": "200", "kind": "sla", "since": "1700000000",
                      "q": "热线 wait"}  # fmt: skip
