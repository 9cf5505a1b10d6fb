"""Screens against the real API: layout at 80×24 and 200×50, audit, help, palette, snapshots.

Snapshot tests assert the state first, then save an SVG (kept under
``docs/img/`` for the manual) and check its structure: the headings and
rows a reader relies on, never the exact bytes (ages and clocks move).
"""

from __future__ import annotations

from pathlib import Path

from tests.console.conftest import ConsoleApi, console_for, feed_board, wait_until
from tests.console.screen_text import screen_text
from watchfloor.console.app import ConsoleApp
from watchfloor.console.screens.audit import AuditScreen
from watchfloor.console.screens.help import HelpScreen
from watchfloor.console.screens.incident import IncidentScreen
from watchfloor.console.widgets.tile import Tile


async def busy_floor(api: ConsoleApi) -> tuple[str, str]:
    """Queues, health, two incidents and a run: what a holiday peak looks like."""
    await feed_board(api)
    evidence = {"waiting": 42, "baseline": 9, "mobile": "138****5678"}
    surge = await api.fire("售前咨询", "critical", title="售前咨询 排队激增 (42 waiting)",
                           evidence=evidence)  # fmt: skip
    await api.fire("order-api", "major", kind="outage", title="order-api degraded")
    run_id = ""
    if api.runner is not None:
        run = await api.runner.start("contact-surge", surge.id, actor="duty", role="admin")
        run_id = run["id"]
    return surge.id, run_id


async def settle(pilot, app: ConsoleApp) -> None:
    await wait_until(pilot, lambda: app.board.connected and len(app.board.queues) == 6, "board")
    await wait_until(pilot, lambda: bool(app.me), "whoami")
    await pilot.pause(0.2)
    app._tick(rearm=False)
    await pilot.pause()


async def test_the_board_is_readable_at_80_by_24(console_api: ConsoleApi, shots: Path) -> None:
    await busy_floor(console_api)
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        assert app.screen.has_class("-narrow")
        text = screen_text(app)
        lines = text.splitlines()
        assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
        for visible in ("Queues", "Health", "Open incidents (2)", "Active playbooks",
                        "售前咨询", "email-general", "CRIT", "1 degraded", "lost"):  # fmt: skip
            assert visible in text, visible
        app.save_screenshot(str(shots / "board-80x24.svg"))
        assert "email-general" in (shots / "board-80x24.svg").read_text(encoding="utf-8")


async def test_the_board_snapshot_at_200_by_50_shows_every_tile(
    console_api: ConsoleApi, shots: Path
) -> None:
    await busy_floor(console_api)
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot, app)
        assert not app.screen.has_class("-narrow")
        assert app.screen.query_one("#queues").row_count == 6
        assert app.screen.query_one("#incidents").row_count == 2
        tiles = {t.id: t for t in app.screen.query(Tile)}
        assert not any(t.has_class("-stale") for t in tiles.values())
        svg = app.export_screenshot()
        for visible in ("Queues", "售前咨询", "phone-general", "Open&#160;incidents",
                        "order-api&#160;degraded", "live"):  # fmt: skip
            assert visible in svg, visible
        (shots / "board-200x50.svg").write_text(svg, encoding="utf-8")


async def test_the_incident_snapshot_shows_evidence_timeline_and_steps(
    console_api: ConsoleApi, shots: Path
) -> None:
    incident_id, run_id = await busy_floor(console_api)
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        app.push_screen(IncidentScreen(incident_id))
        screen = app.screen
        await wait_until(pilot, lambda: bool(getattr(app.screen, "timeline", None)), "timeline")
        if run_id:
            await wait_until(pilot, lambda: screen.query_one("#steps").row_count > 0, "steps")
        await pilot.pause()
        text = screen_text(app)
        for visible in ("售前咨询 排队激增", "138****5678", "opened", "Evidence (masked)",
                        "Timeline"):  # fmt: skip
            assert visible in text, visible
        if run_id:
            assert "Contact surge" in text and "on-call" in text
        offered = {b.binding.action for b in app.active_bindings.values()}
        assert {"acknowledge", "resolve", "add_note", "step_done", "escalate",
                "start_playbook"} <= offered  # fmt: skip
        app.save_screenshot(str(shots / "incident.svg"))
        svg = (shots / "incident.svg").read_text(encoding="utf-8")
        assert "138****5678" in svg and "Timeline" in svg


async def test_the_chinese_board_keeps_columns_aligned(console_api: ConsoleApi) -> None:
    await busy_floor(console_api)
    app = console_for(console_api, "duty_manager", lang="zh")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        lines = screen_text(app).splitlines()
        from rich.cells import cell_len

        assert all(cell_len(line) == 120 for line in lines)
        rows = [line for line in lines if line.startswith((" 售前咨询 ", " phone-vip "))]
        # The channel column starts in the same cell on a Chinese and a Latin row.
        starts = {cell_len(row[: row.index(ch)]) for row in rows for ch in (" 在线 ", " 电话 ")
                  if ch in row}  # fmt: skip
        assert len(rows) == 2 and len(starts) == 1


async def test_the_security_officer_sees_the_audit_tail_and_its_verification(
    console_api: ConsoleApi, shots: Path
) -> None:
    incident = await console_api.fire("after-sales", "major")
    status, _ = await console_api.post(f"/v1/incidents/{incident.id}/ack", {}, "duty_manager")
    assert status == 200
    app = console_for(console_api, "security_officer")
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.may("show_audit"), "whoami")
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, AuditScreen), "the audit screen")
        screen = app.screen
        table = screen.query_one("#audit-table")
        await wait_until(pilot, lambda: table.row_count >= 1, "audit records")
        await wait_until(pilot, lambda: "verified up to" in screen_text(app), "verification")
        assert "incident.ack" in screen_text(app)
        # A new action shows up in the tail without a key press.
        await console_api.post(f"/v1/incidents/{incident.id}/resolve", {}, "duty_manager")
        await wait_until(pilot, lambda: "incident.resolve" in screen_text(app), "the tail",
                         timeout=6)  # fmt: skip
        await pilot.press("slash", *"resolve")
        await pilot.pause(0.1)
        assert table.row_count == 1
        app.save_screenshot(str(shots / "audit.svg"))
        assert "incident.resolve" in (shots / "audit.svg").read_text(encoding="utf-8")


async def test_roles_without_audit_rights_are_not_offered_the_audit_screen(
    console_api: ConsoleApi,
) -> None:
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: bool(app.me), "whoami")
        await pilot.press("u")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, AuditScreen)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Audit" not in titles and "Board" in titles


async def test_help_lists_every_key_and_marks_what_the_role_may_not_do(
    console_api: ConsoleApi,
) -> None:
    app = console_for(console_api, "oncall")
    async with app.run_test(size=(100, 50)) as pilot:
        await wait_until(pilot, lambda: bool(app.me), "whoami")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await pilot.pause()
        text = screen_text(app)
        assert "Step done" in text and "Escalate" in text
        assert "Ack (not allowed for your role)" in text
        assert "Start playbook (not allowed for your role)" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_the_palette_offers_incidents_and_only_allowed_actions(
    console_api: ConsoleApi,
) -> None:
    incident = await console_api.fire("after-sales", "major")
    await console_api.runner.start("contact-surge", incident.id, actor="t", role="admin")
    app = console_for(console_api, "oncall")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: incident.id in app.board.incidents, "snapshot")
        await wait_until(pilot, lambda: bool(app.me), "whoami")
        app.push_screen(IncidentScreen(incident.id))
        await pilot.pause()
        await wait_until(pilot, lambda: app.screen.query_one("#steps").row_count > 0, "steps")
        await wait_until(pilot, lambda: app.screen.check_action("step_done", ()), "step keys")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Step done" in titles and "Escalate" in titles
        assert "Ack" not in titles and "Start playbook" not in titles
        assert any(t.startswith(incident.id) for t in titles)
