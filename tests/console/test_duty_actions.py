"""Duty manager actions added to the console, against a real API on a real Redis: the playbook
picker, Chinese step titles from the library, a manual incident, a silence, skip and abort."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.console.conftest import ConsoleApi, console_for, offered, wait_until
from tests.console.screen_text import screen_text
from watchfloor.console.screens.forms import (
    ManualIncidentModal,
    PlaybookPicker,
    SilenceModal,
    ranked_playbooks,
)
from watchfloor.console.screens.incident import IncidentScreen
from watchfloor.console.screens.modals import NoteModal


async def opened(pilot, app, incident_id: str, action: str | None) -> IncidentScreen:
    """The incident's screen, once the API said what may be done there (``action`` is)."""
    await wait_until(pilot, lambda: bool(app.me), "whoami")
    await wait_until(pilot, lambda: bool(app.playbooks), "the playbook library")
    await wait_until(pilot, lambda: incident_id in app.board.incidents, "the snapshot")
    app.push_screen(IncidentScreen(incident_id))
    await pilot.pause()
    if action is None:
        await wait_until(pilot, lambda: app.screen.permissions_known, "the permissions")
    else:
        await offered(pilot, app, action)
    return app.screen


PLAYBOOKS = [
    {"id": "a-surge", "kinds": ["surge"], "manual_only": False},
    {"id": "b-leak", "kinds": ["leak"], "manual_only": False},
    {"id": "disaster", "kinds": [], "manual_only": True},
    {"id": "c-sla", "kinds": ["sla"], "manual_only": False},
]


@pytest.mark.parametrize(("kind", "first"), [
    ("sla", ["c-sla", "disaster", "a-surge", "b-leak"]),
    ("leak", ["b-leak", "disaster", "a-surge", "c-sla"]),
    ("manual", ["disaster", "a-surge", "b-leak", "c-sla"]),
])  # fmt: skip
def test_the_picker_offers_the_incidents_kind_first_then_manual_only_ones(kind, first) -> None:
    assert [p["id"] for p in ranked_playbooks(PLAYBOOKS, kind)] == first


async def test_p_picks_a_playbook_from_the_library_and_starts_it(
    console_api: ConsoleApi, shots: Path
) -> None:
    incident = await console_api.fire("phone-vip", "major", kind="sla", rule="sla.queue")
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(120, 36)) as pilot:
        await opened(pilot, app, incident.id, "start_playbook")
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PlaybookPicker), "the picker")
        text = screen_text(app)
        assert "Service level breach" in text and "manual only" in text
        assert text.index("sla-breach") < text.index("disaster") < text.index("contact-surge")
        app.save_screenshot(str(shots / "playbook-picker.svg"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.board.run_for(incident.id) is not None, "the run")
        assert app.board.run_for(incident.id)["playbook"] == "sla-breach"


async def test_a_chinese_console_shows_the_librarys_chinese_step_titles_and_events(
    console_api: ConsoleApi,
) -> None:
    incident = await console_api.fire("售前咨询", "critical")
    await console_api.runner.start("contact-surge", incident.id, actor="t", role="admin")
    app = console_for(console_api, "duty_manager", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, app, incident.id, "acknowledge")
        await wait_until(pilot, lambda: screen.query_one("#steps").row_count > 0, "steps")
        await wait_until(pilot, lambda: bool(screen.timeline), "the timeline")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "开启自动回复" in text or "自动回复" in text
        assert "Turn on" not in text
        assert "预案启动" in text  # playbook_started, translated
        assert "值班员" in text and "值班主管" in text  # owner roles, the seeds' terms


async def test_m_opens_a_manual_incident_and_shows_it(console_api: ConsoleApi) -> None:
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.may("open_incident"), "whoami")
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, ManualIncidentModal), "the form")
        await pilot.press(*"Fire alarm at site B", "enter", *"site-b", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen), "the incident")
        incident_id = app.screen.incident_id
        status, seen = await console_api.get(f"/v1/incidents/{incident_id}", "viewer")
        assert status == 200
        assert (seen["title"], seen["subject"], seen["severity"], seen["kind"]) == (
            "Fire alarm at site B", "site-b", "major", "manual")  # fmt: skip


async def test_s_silences_the_incidents_rule_on_its_subject_with_a_reason(
    console_api: ConsoleApi,
) -> None:
    incident = await console_api.fire("hotline", "major", kind="surge", rule="surge.offered")
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(120, 36)) as pilot:
        await opened(pilot, app, incident.id, "acknowledge")
        await pilot.press("S")
        await wait_until(pilot, lambda: isinstance(app.screen, SilenceModal), "the form")
        await pilot.press(*"planned promo", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen), "back")

        async def silences() -> list:
            return (await console_api.get("/v1/silences"))[1]["silences"]

        for _ in range(50):
            found = await silences()
            if found:
                break
            await pilot.pause(0.1)
        assert len(found) == 1
        assert found[0]["matchers"] == {"rule": "surge.offered", "subject": "hotline"}
        assert found[0]["reason"] == "planned promo"
        assert 3590 <= found[0]["ends_at"] - found[0]["starts_at"] <= 3610


async def test_k_skips_a_step_and_x_aborts_the_run(console_api: ConsoleApi) -> None:
    incident = await console_api.fire("售前咨询", "critical")
    run = await console_api.runner.start("contact-surge", incident.id, actor="t", role="admin")
    first = run["steps"][0]["id"]
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, app, incident.id, "start_playbook")
        await wait_until(pilot, lambda: screen.query_one("#steps").row_count > 0, "steps")
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, NoteModal), "the reason")
        await pilot.press(*"done by hand", "enter")

        def state_of(step_id: str) -> str:
            steps = app.board.runs[run["id"]]["steps"]
            return next(s["state"] for s in steps if s["id"] == step_id)

        await wait_until(pilot, lambda: state_of(first) == "skipped", "the skip")
        await pilot.press("X")
        await wait_until(pilot, lambda: isinstance(app.screen, NoteModal), "the abort reason")
        await pilot.press(*"false alarm", "enter")
        await wait_until(pilot, lambda: app.board.runs[run["id"]]["state"] == "aborted", "abort")
        _, seen = await console_api.get(f"/v1/runs/{run['id']}")
        assert seen["state"] == "aborted"


@pytest.mark.parametrize("key", ["m", "S", "k", "X", "p"])
async def test_a_viewer_is_offered_none_of_the_duty_managers_keys(
    console_api: ConsoleApi, key: str
) -> None:
    incident = await console_api.fire("hotline", "major")
    app = console_for(console_api, "viewer")
    async with app.run_test(size=(120, 36)) as pilot:
        await opened(pilot, app, incident.id, None)
        await pilot.press(key)
        await pilot.pause(0.2)
        assert isinstance(app.screen, IncidentScreen)
        offered = {b.binding.key for b in app.active_bindings.values()}
        assert key not in offered


@pytest.mark.parametrize(("role", "offered"), [
    ("duty_manager", {"New incident", "Silence", "Skip step", "Abort run", "Start playbook"}),
    ("viewer", set()),
])  # fmt: skip
async def test_the_palette_and_help_offer_the_new_actions_by_role(
    console_api: ConsoleApi, role: str, offered: set
) -> None:
    incident = await console_api.fire("hotline", "major")
    await console_api.runner.start("contact-surge", incident.id, actor="t", role="admin")
    app = console_for(console_api, role)
    async with app.run_test(size=(120, 50)) as pilot:
        await opened(pilot, app, incident.id, None)
        await wait_until(pilot, lambda: app.screen.query_one("#steps").row_count > 0, "steps")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        new = {"New incident", "Silence", "Skip step", "Abort run", "Start playbook"}
        assert titles & new == offered
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        text = screen_text(app)
        for what in new:
            assert (f"{what} (not allowed" in text) == (what not in offered), what


async def test_the_step_list_has_the_focus_so_arrows_choose_the_step_to_act_on(
    console_api: ConsoleApi,
) -> None:
    incident = await console_api.fire("售前咨询", "critical")
    run = await console_api.runner.start("contact-surge", incident.id, actor="t", role="admin")
    app = console_for(console_api, "oncall")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, app, incident.id, "step_done")
        steps = screen.query_one("#steps")
        await wait_until(pilot, lambda: steps.row_count > 2, "steps")
        assert app.focused is steps
        await pilot.press("down", "down")
        assert steps.cursor_key() == run["steps"][2]["id"]


async def leak_incident_screen(console_api: ConsoleApi, pilot, app) -> tuple[IncidentScreen, dict]:
    """The data-leak playbook's run on screen, the cursor on its security-approval step."""
    incident = await console_api.fire("agent-9", "critical", kind="leak", rule="leak.pii",
                                      title="PII sent to a customer")  # fmt: skip
    run = await console_api.runner.start("data-leak", incident.id, actor="t", role="admin")
    await wait_until(pilot, lambda: run["id"] in app.board.runs, "the run")
    screen = await opened(pilot, app, incident.id, None)
    steps = screen.query_one("#steps")
    await wait_until(pilot, lambda: steps.row_count == len(run["steps"]), "steps")
    at = [s["id"] for s in run["steps"]].index("security-approval")
    await pilot.press(*["down"] * at)
    assert steps.cursor_key() == "security-approval"
    return screen, run


async def test_the_security_officer_approves_in_the_console_what_the_api_lets_them_approve(
    console_api: ConsoleApi,
) -> None:
    app = console_for(console_api, "security_officer")
    async with app.run_test(size=(140, 40)) as pilot:
        screen, run = await leak_incident_screen(console_api, pilot, app)
        await offered(pilot, app, "approve")
        assert screen.check_action("skip_step", ()) is not True
        await pilot.press("A")

        async def approved_by() -> str | None:
            _, seen = await console_api.get(f"/v1/runs/{run['id']}")
            step = next(s for s in seen["steps"] if s["id"] == "security-approval")
            return step["approval"]["by"]

        for _ in range(50):
            if await approved_by():
                break
            await pilot.pause(0.1)
        assert await approved_by() == app.me["name"]


async def test_the_duty_manager_is_not_offered_to_skip_a_step_waiting_for_an_approval(
    console_api: ConsoleApi,
) -> None:
    app = console_for(console_api, "duty_manager")
    async with app.run_test(size=(140, 40)) as pilot:
        screen, run = await leak_incident_screen(console_api, pilot, app)
        assert screen.check_action("skip_step", ()) is not True
        assert screen.check_action("approve", ()) is not True
        await pilot.press("k")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, NoteModal)  # no way to ask for the skip
        while screen.query_one("#steps").cursor_key() != run["steps"][0]["id"]:
            await pilot.press("up")
        await pilot.pause()
        assert screen.check_action("skip_step", ()) is True  # an ordinary step: offered
        _, seen = await console_api.get(f"/v1/runs/{run['id']}")
        step = next(s for s in seen["steps"] if s["id"] == "security-approval")
        assert step["state"] != "skipped"
