"""Every screen under ``--lang zh``, against the real API with a realistic floor, reads Chinese.

The floor: six queues with Chinese and Latin names, health with a degraded component
and a lost heartbeat, an SLA breach and a surge with the engine's evidence, a playbook
run, a flag set by a playbook step, a silence, a resolved incident, audit records. The
test visits the board, the incident with its run, the audit log, the silences, the
history, the help, the command palette and the forms (new incident, playbook picker,
silence), and fails on any ASCII word that is not an id, a proper noun or a term on
the allow-list below.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp

from tests.console.conftest import DEMO_QUEUES, ConsoleApi, console_for, feed_board, wait_until
from tests.console.screen_text import screen_text
from tests.console.test_zh_titles import fire_engine_incidents
from watchfloor.console.screens.audit import AuditScreen
from watchfloor.console.screens.help import HelpScreen
from watchfloor.console.screens.history import HistoryScreen
from watchfloor.console.screens.incident import IncidentScreen
from watchfloor.console.screens.silences import SilencesScreen
from watchfloor.playbooks.library import Library

WORD = re.compile(r"[A-Za-z][A-Za-z0-9_\-.+']*")
IDS = re.compile(r"^(INC|RUN|DRL)-[\w\-]+$|^sil-[0-9a-f]+$|^[a-z]+\.[a-z_.]+$")
"""Incident, run and silence ids, and rule ids (``outage.heartbeat``)."""
PROPER_NOUNS = {"Watchfloor", "DingTalk", "WeCom", "Feishu", "API"}
"""Product and vendor names, kept in Latin letters in the Chinese interface too."""
DATA = {q[0] for q in DEMO_QUEUES} | {
    "crm", "order-api", "ivr", "acd-2", "probe", "acd-1",
    "duty-manager-1", "security-officer-1", "admin-1", "oncall-1", "viewer-1", "duty",
} | set(Library.load().playbooks)  # fmt: skip
"""Names the data carries (queues, components, sources, people, playbook ids): ids, not words."""
ALLOWED = {
    "kind", "since", "until", "sla",  # the history search syntax (kind:sla since:...)
    "ctrl", "p", "esc", "tab", "enter", "escape",  # key names
    "k", "a", "r", "n", "d", "e", "A", "S", "X", "R", "x", "g", "s", "q", "b", "u", "m", "h",
    "l", "i", "v",  # single-letter keys in the footer and the help
    "ctrl+p",
    "SLA", "FAQ", "VIP",  # contact-centre terms the seed documents write in Latin letters too
}  # fmt: skip
"""Terms allowed in Latin letters on a Chinese screen (keys and the search syntax)."""


def english_words(text: str) -> set[str]:
    words = {w.strip(".-'") for w in WORD.findall(text)}
    return {
        w for w in words
        if w and not IDS.match(w) and w not in PROPER_NOUNS | DATA | ALLOWED
    }  # fmt: skip


async def floor(api: ConsoleApi) -> tuple[str, str]:
    await feed_board(api)
    sla_id, surge_id = await fire_engine_incidents(api)
    run = await api.runner.start("contact-surge", surge_id, actor="duty", role="admin")
    await api.post(f"/v1/incidents/{sla_id}/note", {"note": "调配 4 名坐席"}, "duty_manager")
    await api.post(f"/v1/incidents/{sla_id}/ack", {}, "duty_manager")
    old = await api.fire("退货退款", "minor", kind="sla", rule="sla.queue",
                         title="Abandon rate on 退货退款 is 12%", at=1_700_000_000.0,
                         evidence={"abandon_rate": 0.12, "limit": 0.05})  # fmt: skip
    await api.incidents.resolve(old.id, actor="duty")
    matchers = {"rule": "outage.heartbeat", "subject": "acd-2"}
    silence = {"matchers": matchers, "duration_s": 3600, "reason": "夜间维护"}
    assert (await api.post("/v1/silences", silence, "duty_manager"))[0] == 201
    headers = {"Authorization": f"Bearer {api.tokens['admin']}"}
    async with (
        aiohttp.ClientSession() as http,
        http.put(f"{api.url}/v1/flags/auto_reply", json={"value": "on"}, headers=headers) as resp,
    ):
        assert resp.status == 200
    return surge_id, str(run["id"])


async def seen(app: Any, pilot: Any, where: str, found: dict[str, set[str]]) -> None:
    await pilot.pause(0.3)
    words = english_words(screen_text(app))
    if words:
        found[where] = words


async def test_every_screen_in_chinese_shows_no_english_word(
    console_api: ConsoleApi, shots: Path
) -> None:
    """Also the manual's Chinese pictures: ``docs/img/board-zh.svg`` and ``incident-zh.svg``."""
    surge_id, _ = await floor(console_api)
    app = console_for(console_api, "admin", lang="zh")
    found: dict[str, set[str]] = {}
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_until(pilot, lambda: len(app.board.incidents) == 2 and bool(app.me), "board")
        await wait_until(pilot, lambda: bool(app.board.runs), "runs")
        await wait_until(pilot, lambda: len(app.board.queues) == 6, "queues")
        await pilot.pause(0.3)
        app._tick(rearm=False)  # the tiles' ages and counts, as the first second's tick does
        await seen(app, pilot, "board", found)
        app.save_screenshot(str(shots / "board-zh.svg"))
        svg = (shots / "board-zh.svg").read_text(encoding="utf-8")
        assert "进线激增" in svg and "未关闭事件&#160;(2)" in svg and "数据过期" not in svg
        app.push_screen(IncidentScreen(surge_id))
        await wait_until(pilot, lambda: bool(getattr(app.screen, "timeline", None)), "timeline")
        await wait_until(pilot, lambda: app.screen.query_one("#steps").row_count > 0, "steps")
        await seen(app, pilot, "incident", found)
        app.save_screenshot(str(shots / "incident-zh.svg"))
        assert "开启自动回复" in (shots / "incident-zh.svg").read_text(encoding="utf-8")
        for key, where in (("p", "playbook picker"), ("S", "silence form")):
            await pilot.press(key)
            await seen(app, pilot, where, found)
            await pilot.press("escape")
        await pilot.press("m")
        await seen(app, pilot, "manual incident form", found)
        await pilot.press("escape")
        for key, screen, where in (("u", AuditScreen, "audit"), ("l", SilencesScreen, "silences"),
                                   ("i", HistoryScreen, "history")):  # fmt: skip
            await pilot.press("b")
            await pilot.press(key)
            await wait_until(pilot, lambda s=screen: isinstance(app.screen, s), where)
            await pilot.pause(0.5)
            await seen(app, pilot, where, found)
        await pilot.press("b")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await seen(app, pilot, "help", found)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await seen(app, pilot, "palette", found)
    assert found == {}, "\n".join(f"{k}: {sorted(v)}" for k, v in found.items())
