"""The console against a real monitor API on a real Redis, driven through the Pilot."""

from __future__ import annotations

from pathlib import Path

from tests.console.conftest import ConsoleApi, console_for, offered, wait_until
from tests.console.screen_text import screen_text
from watchfloor.console.screens.incident import IncidentScreen
from watchfloor.console.widgets.connection import ConnectionIndicator
from watchfloor.console.widgets.tile import Tile


async def test_an_incident_fired_in_redis_appears_on_the_board(console_api: ConsoleApi) -> None:
    app = console_for(console_api, "viewer")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.board.connected and app.board.seq is not None,
                         "the snapshot")  # fmt: skip
        incident = await console_api.fire("售前咨询", "critical")
        table = app.screen.query_one("#incidents")
        await wait_until(pilot, lambda: incident.id in table.rows, "the incident row")
        await pilot.pause()
        assert "Surge on 售前咨询" in screen_text(app)


async def test_acknowledging_from_the_console_changes_the_incident_for_everyone(
    console_api: ConsoleApi,
) -> None:
    incident = await console_api.fire("after-sales", "major")
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.me), "whoami")
        await wait_until(pilot, lambda: incident.id in app.board.incidents, "the snapshot")
        await pilot.press("enter")  # the incident list has the focus
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen), "the screen")
        await offered(pilot, app, "acknowledge")
        await pilot.press("a")
        await wait_until(
            pilot, lambda: app.board.incidents[incident.id]["state"] == "acknowledged", "the ack"
        )
        status, seen_by_viewer = await console_api.get(f"/v1/incidents/{incident.id}", "viewer")
        assert status == 200
        assert seen_by_viewer["state"] == "acknowledged"
        assert seen_by_viewer["acknowledged_by"] == "duty-manager-1"


async def test_resolving_asks_for_a_note_and_sends_it(console_api: ConsoleApi) -> None:
    incident = await console_api.fire("phone-vip", "minor", kind="sla")
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.me), "whoami")
        app.push_screen(IncidentScreen(incident.id))
        await offered(pilot, app, "resolve")
        await pilot.press("r")
        await pilot.pause()
        await pilot.press(*"staff back", "enter")
        await wait_until(pilot, lambda: app.board.incidents.get(incident.id, {}).get("state")
                         == "resolved", "the resolution")  # fmt: skip
        _, detail = await console_api.get(f"/v1/incidents/{incident.id}")
        assert any(e.get("note") == "staff back" for e in detail["timeline"])


async def test_a_viewer_is_offered_no_action_and_the_api_refuses_one(
    console_api: ConsoleApi,
) -> None:
    incident = await console_api.fire("after-sales", "major")
    app = console_for(console_api, "viewer")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.me.get("role") == "viewer", "whoami")
        app.push_screen(IncidentScreen(incident.id))
        await wait_until(pilot, lambda: app.screen.permissions_known, "the permissions")
        offered = {b.binding.action for b in app.active_bindings.values()}
        assert not offered & {"acknowledge", "resolve", "add_note", "step_done", "escalate",
                              "start_playbook", "show_audit"}  # fmt: skip
        assert "escape" in app.active_bindings
        await pilot.press("a")
        await pilot.pause(0.3)
        status, _ = await console_api.post(f"/v1/incidents/{incident.id}/ack", {}, "viewer")
        assert status == 403
    _, detail = await console_api.get(f"/v1/incidents/{incident.id}")
    assert detail["state"] == "open"


async def test_chinese_interface_shows_chinese_headings(console_api: ConsoleApi) -> None:
    await console_api.fire("售前咨询", "critical", title="售前咨询 排队激增")
    app = console_for(console_api, "viewer", lang="zh")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: bool(app.board.incidents), "the snapshot")
        await pilot.pause(0.2)
        text = screen_text(app)
        for heading in ("队列", "系统健康", "未关闭事件", "进行中的预案", "紧急"):
            assert heading in text


async def test_a_stopped_api_shows_every_tile_stale_and_a_restart_recovers(
    console_api: ConsoleApi, shots: Path
) -> None:
    await console_api.fire("after-sales", "major")
    app = console_for(console_api, "viewer")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.board.incidents), "the snapshot")
        app._tick(rearm=False)
        tiles = list(app.screen.query(Tile))
        assert tiles and not any(t.has_class("-stale") for t in tiles)

        await console_api.stop()
        await wait_until(pilot, lambda: not app.board.connected, "the disconnection")
        await wait_until(pilot, lambda: all(t.has_class("-stale") for t in tiles), "stale tiles")
        assert app.screen.query_one(ConnectionIndicator).has_class("-down")
        assert "STALE" in screen_text(app)
        app.save_screenshot(str(shots / "board-disconnected.svg"))

        later = await console_api.fire("phone-vip", "critical")  # happens while we are away
        await console_api.start()
        await wait_until(pilot, lambda: app.board.connected, "the reconnection", timeout=8)
        await wait_until(pilot, lambda: later.id in app.board.incidents, "the missed incident")
        app._tick(rearm=False)
        await pilot.pause()
        assert not any(t.has_class("-stale") for t in tiles)
        assert app.screen.query_one(ConnectionIndicator).has_class("-live")


async def test_marking_a_step_done_moves_the_run(console_api: ConsoleApi) -> None:
    incident = await console_api.fire("售前咨询", "critical")
    run = await console_api.runner.start("contact-surge", incident.id, actor="t", role="admin")
    first = run["steps"][0]["id"]
    app = console_for(console_api, "oncall")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.me), "whoami")
        await wait_until(pilot, lambda: run["id"] in app.board.runs, "the run in the snapshot")
        app.push_screen(IncidentScreen(incident.id))
        await pilot.pause()
        await wait_until(pilot, lambda: app.screen.query_one("#steps").row_count > 0, "steps")
        await offered(pilot, app, "step_done")
        assert "start_playbook" not in {b.binding.action for b in app.active_bindings.values()}
        await pilot.press("d")

        def step_state() -> str:
            steps = app.board.runs[run["id"]]["steps"]
            return next(s["state"] for s in steps if s["id"] == first)

        await wait_until(pilot, lambda: step_state() == "done", "the step done")
        _, seen = await console_api.get(f"/v1/runs/{run['id']}")
        assert next(s for s in seen["steps"] if s["id"] == first)["state"] == "done"


async def test_a_console_started_before_the_api_learns_its_role_once_connected(
    console_api: ConsoleApi,
) -> None:
    await console_api.stop()
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.link[0] == "down", "the failed first attempt")
        assert not app.may("open_incident")
        await console_api.start()
        await wait_until(pilot, lambda: app.may("open_incident"), "whoami after connecting",
                         timeout=8)  # fmt: skip
        await wait_until(pilot, lambda: "disaster" in app.playbooks, "the playbook library")
