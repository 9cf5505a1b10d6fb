"""Incident titles in Chinese, composed at the edge from the engine's machine fields.

The incidents are fired into the real store with the evidence the detectors write
(the SLA detector's conditions merged by the engine's own ``merge``), served by the
real API and rendered by the console under ``--lang zh``; the engine's English
title stays the data (the API still serves it).
"""

from __future__ import annotations

from typing import Any

from tests.console.conftest import ConsoleApi, console_for, feed_board, wait_until
from tests.console.screen_text import screen_text
from watchfloor.console.screens.incident import IncidentScreen
from watchfloor.console.titles import incident_title
from watchfloor.monitor.detectors.conditions import Breach, merge


def sla_evidence() -> dict[str, Any]:
    wait = Breach("longest_wait", "major", "Longest wait on 热线 is 1m3s (threshold 15s)",
                  {"longest_wait_s": 63.0, "threshold_s": 15.0, "waiting": 12})  # fmt: skip
    level = Breach("service_level", "minor", "Service level on 热线 is 52% over 15 min",
                   {"service_level": 0.52, "answered": 80, "target": 0.8})  # fmt: skip
    _, _, merged = merge([wait, level])
    return {"queue": "热线", "channel": "phone", **merged}


SURGE = {"queue": "售前咨询", "channel": "chat", "offered": 90, "expected": 30.0, "ratio": 3.0,
         "window_s": 300, "baseline_per_min": 6.0, "last_week_same_hour": None,
         "source": "contact"}  # fmt: skip


async def fire_engine_incidents(api: ConsoleApi) -> tuple[str, str]:
    sla = await api.fire("热线", "major", kind="sla", rule="sla.queue",
                         title="Longest wait on 热线 is 1m3s (threshold 15s) (also service level)",
                         evidence=sla_evidence())  # fmt: skip
    surge = await api.fire("售前咨询", "critical", kind="surge", rule="surge.offered",
                           title="Contact surge on 售前咨询: 3.0x baseline (90 offered in 5 min)",
                           evidence=SURGE)  # fmt: skip
    return sla.id, surge.id


ZH_TITLES = (
    "热线 最长等待 1分3秒（阈值 15秒）（另有：服务水平）",
    "售前咨询 进线激增：基线的 3.0 倍",
)


async def test_the_chinese_board_and_incident_show_titles_composed_from_the_evidence(
    console_api: ConsoleApi,
) -> None:
    await feed_board(console_api)
    sla_id, _ = await fire_engine_incidents(console_api)
    app = console_for(console_api, "duty_manager", lang="zh")
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.board.incidents) == 2, "incidents")
        await pilot.pause(0.2)
        text = screen_text(app)
        for title in (ZH_TITLES[0][:19], ZH_TITLES[1]):  # the tile cuts the longer one
            assert title in text, title
        assert "Contact surge" not in text and "Longest wait" not in text
        app.push_screen(IncidentScreen(sla_id))
        await wait_until(pilot, lambda: bool(getattr(app.screen, "timeline", None)), "timeline")
        await pilot.pause()
        assert ZH_TITLES[0] in screen_text(app)
    # The engine's English title is still the data the API serves.
    _, body = await console_api.get(f"/v1/incidents/{sla_id}")
    assert body["title"].startswith("Longest wait on 热线")


def test_every_engine_rule_has_a_chinese_title_without_english_words() -> None:
    cases = [
        {"kind": "outage", "rule": "outage.component", "subject": "crm", "severity": "critical",
         "evidence": {"state": "down", "conditions": [
             {"condition": "down", "severity": "critical", "failed_probes": 3}]}},
        {"kind": "outage", "rule": "outage.heartbeat", "subject": "acd-2", "evidence": {}},
        {"kind": "opinion", "rule": "opinion.topic", "subject": "退款", "severity": "minor",
         "evidence": {"conditions": [{"condition": "negative_share", "severity": "minor",
                                      "share": 0.8}]}},
        {"kind": "leak", "rule": "leak.bulk_export", "subject": "u-17",
         "evidence": {"largest": 12000}},
        {"kind": "leak", "rule": "leak.new_rule", "subject": "u-17", "evidence": {}},
    ]  # fmt: skip
    titles = [incident_title({**c, "title": "English words here"}, "zh") for c in cases]
    assert titles == ["crm 中断（连续 3 次探测失败）", "acd-2 心跳丢失", "舆情 退款：负面占比 80%",
                      "u-17 批量导出 12000 条记录", "数据泄露风险：u-17"]  # fmt: skip
    manual = {"kind": "manual", "title": "大促页面打不开", "subject": "web"}
    assert incident_title(manual, "zh") == "大促页面打不开"
    assert incident_title({**cases[0], "title": "crm is down"}, "en") == "crm is down"


async def test_a_chinese_toast_names_the_step_by_its_chinese_title(console_api: ConsoleApi) -> None:
    await feed_board(console_api)
    _, surge_id = await fire_engine_incidents(console_api)
    run = await console_api.runner.start("contact-surge", surge_id, actor="t", role="admin")
    app = console_for(console_api, "oncall", lang="zh")
    async with app.run_test(size=(140, 36)) as pilot:
        await wait_until(pilot, lambda: bool(app.me) and bool(app.playbooks), "whoami, library")
        app.act("step_done", run["id"], run["steps"][0]["id"])
        await wait_until(pilot, lambda: bool(list(app._notifications)), "the toast")
        toast = list(app._notifications)[-1].message
        assert toast == "步骤 开启自动回复（排队提示与预计等待时间） 已完成", toast
