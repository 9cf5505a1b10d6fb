"""The console's traps, each driven through a Pilot against the real API.

``m`` then Escape from the board, Enter on the incident list, a drill without
an incident, resolved incidents (history), retrying a failed notification, and
the list of silences.
"""

from __future__ import annotations

from tests.console.conftest import ConsoleApi, console_for, feed_board, offered, wait_until
from tests.console.screen_text import screen_text
from watchfloor.console.screens.board import BoardScreen
from watchfloor.console.screens.incident import IncidentScreen


async def _ready(pilot, app) -> None:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: app.board.connected and bool(app.me), "board and whoami")
    await pilot.pause(0.1)


async def test_m_then_escape_returns_to_a_drawn_board(console_api: ConsoleApi) -> None:
    await feed_board(console_api)
    await console_api.fire("售前咨询", "critical", title="surge")
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(pilot, app)
        await offered(pilot, app, "open_incident")
        await pilot.press("m")
        await wait_until(pilot, lambda: not isinstance(app.screen, BoardScreen), "the form")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), "back on the board")
        text = screen_text(app)
        assert "Open incidents (1)" in text and "surge" in text and "no data" not in text, text
        await app.run_action("app.pop_screen")  # what Escape on a screen does, once too often
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert isinstance(app.screen, BoardScreen), app.screen_stack
        assert "surge" in screen_text(app)


async def test_the_incident_list_opens_on_the_worst_and_enter_opens_the_highlighted_row(
    console_api: ConsoleApi,
) -> None:
    minor = await console_api.fire("退货退款", "minor", title="minor one")
    worst = await console_api.fire("售前咨询", "critical", title="the worst one")
    major = await console_api.fire("售后服务", "major", title="major one")
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(160, 45)) as pilot:
        await _ready(pilot, app)
        await wait_until(pilot, lambda: app.screen.incidents.row_count == 3, "three incidents")
        board = app.screen
        assert isinstance(board, BoardScreen)
        assert board.focused is board.incidents, board.focused
        assert board.incidents.cursor_key() == worst.id
        await pilot.press("down")
        assert board.incidents.cursor_key() == major.id
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen), "incident screen")
        assert app.screen.incident_id == major.id
        assert minor.id != major.id


async def test_a_drill_started_without_an_incident_can_be_opened(console_api: ConsoleApi) -> None:
    run = await console_api.runner.start("contact-surge", None, actor="duty", role="admin",
                                         drill=True)  # fmt: skip
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(160, 45)) as pilot:
        await _ready(pilot, app)
        await wait_until(pilot, lambda: app.screen.runs.row_count == 1, "the drill on the board")
        board = app.screen
        board.runs.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, BoardScreen), "the drill opened")
        await wait_until(pilot, lambda: run["id"] in screen_text(app), "the run shown")
        assert app.screen.run is not None and app.screen.run["id"] == run["id"]


async def test_silences_are_listed_and_expired_from_the_console(console_api: ConsoleApi) -> None:
    from watchfloor.console.screens.silences import SilencesScreen

    status, made = await console_api.post(
        "/v1/silences",
        {
            "matchers": {"rule": "surge.default", "subject": "售前咨询"},
            "duration_s": 3600,
            "reason": "planned release",
        },
        "duty_manager",
    )
    assert status == 201, made
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(140, 30)) as pilot:
        await _ready(pilot, app)
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, SilencesScreen), "silences screen")
        await wait_until(pilot, lambda: len(app.screen.silences) == 1, "the silence listed")
        text = screen_text(app)
        assert "subject=售前咨询" in text and "planned release" in text, text
        await offered(pilot, app, "expire")
        await pilot.press("x")
        await wait_until(pilot, lambda: not app.screen.silences, "the silence expired")
    status, left = await console_api.get("/v1/silences")
    assert status == 200 and left["silences"] == []


async def test_a_step_is_retried_with_a_key_through_the_api(console_api: ConsoleApi) -> None:
    incident = await console_api.fire("售前咨询", "critical")
    await console_api.runner.start("contact-surge", incident.id, actor="t", role="admin")
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(160, 45)) as pilot:
        await _ready(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen), "the incident")
        await offered(pilot, app, "retry_step")
        await pilot.press("R")
        # The step's action has not failed: the API's refusal reaches the user, named.
        said = "no failed action to retry"
        await wait_until(pilot, lambda: any(said in str(n.message) for n in app._notifications),
                         "the API's answer")  # fmt: skip


async def test_the_chinese_incident_screen_shows_evidence_as_labelled_text(
    console_api: ConsoleApi,
) -> None:
    evidence = {"longest_wait_s": 83, "service_level": 0.32, "waiting": 42,
                "conditions": [{"waiting": 42, "threshold_s": 60}]}  # fmt: skip
    incident = await console_api.fire("售前咨询", "critical", kind="sla", evidence=evidence)
    app = console_for(console_api, "duty_manager", lang="zh")
    async with app.run_test(size=(160, 45)) as pilot:
        await _ready(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen), "the incident")
        assert app.screen.incident_id == incident.id
        await wait_until(pilot, lambda: "最长等待" in screen_text(app), "the evidence")
        text = screen_text(app)
        assert "1分23秒" in text and "服务水平" in text and "32%" in text, text
        assert "longest_wait_s" not in text and "{'" not in text and "0.32" not in text
