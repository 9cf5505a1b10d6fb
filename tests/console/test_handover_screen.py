"""The handover screen through a Pilot against the real API: write notes, sign, in zh too."""

from __future__ import annotations

from tests.console.conftest import ConsoleApi, console_for, wait_until
from tests.console.screen_text import screen_text
from watchfloor.console.screens.handover import HandoverScreen
from watchfloor.security.tokens import TokenStore


async def _open(pilot, app) -> HandoverScreen:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: bool(app.me), "whoami")
    await pilot.press("h")
    await wait_until(pilot, lambda: isinstance(app.screen, HandoverScreen), "handover screen")
    screen = app.screen
    await wait_until(pilot, lambda: bool(screen.markdown), "the report")
    return screen


async def test_outgoing_writes_notes_and_the_incoming_duty_manager_signs(
    console_api: ConsoleApi,
) -> None:
    await console_api.fire("售前咨询", "critical", title="售前排队激增")
    outgoing = console_for(console_api, "duty_manager")
    async with outgoing.run_test(size=(140, 45)) as pilot:
        screen = await _open(pilot, outgoing)
        assert "售前排队激增" in screen.markdown and "UTC" not in screen_text(outgoing)
        await pilot.click("#handover-notes")
        await pilot.press(*"CRM slow, vendor called")
        await pilot.click("#handover-suggestions")
        await pilot.press(*"two more agents")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "vendor called" in screen.markdown, "notes in the report")
        await pilot.press("ctrl+g")  # the author cannot sign: the API says so, nothing is kept
        await pilot.pause(0.3)
        assert screen.signed is None
    assert (await console_api.get("/v1/handover/log"))[1] == {"shifts": []}

    console_api.tokens["incoming"], _ = await TokenStore(console_api.redis).create(
        "wang.fang", "duty_manager"
    )
    incoming = console_for(console_api, "incoming", lang="zh")
    async with incoming.run_test(size=(140, 45)) as pilot:
        screen = await _open(pilot, incoming)
        assert "two more agents" in screen.markdown
        assert "交接" in screen_text(incoming) and "改进建议" in screen_text(incoming)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: screen.signed is not None, "signed")
        assert screen.signed["signed_by"] == "wang.fang"
    shifts = (await console_api.get("/v1/handover/log?search=vendor"))[1]["shifts"]
    assert [(s["outgoing"], s["signed_by"]) for s in shifts] == [("duty-manager-1", "wang.fang")]
