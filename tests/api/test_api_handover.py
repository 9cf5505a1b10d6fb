"""The handover through the real API: notes, figures from counts, sign-off, export, duty log."""

from __future__ import annotations

import time
from pathlib import Path

from tests.api.test_api_support import api_fixture
from watchfloor.core import keys
from watchfloor.core.bus import EventProducer
from watchfloor.core.events import Contact, QueueStats
from watchfloor.monitor.silences import SilenceStore
from watchfloor.playbooks.flags import set_flag

api = api_fixture()


def stats(ts: float, offered: int, answered: int, abandoned: int, in_sla: int) -> QueueStats:
    return QueueStats(
        ts=ts, source="acd", queue="presales", channel="phone", waiting=3,
        longest_wait_s=12.0, agents_available=2, agents_busy=5, offered=offered,
        answered=answered, abandoned=abandoned, answered_in_sla=in_sla,
    )  # fmt: skip


async def seed_shift(api) -> str:
    now = time.time()
    # A quiet hour (100 offered, 95 % in SLA) then a bad five minutes (10 offered, 10 %):
    # from counts the shift's service level is 82/96 = 85.4 %, not the worst 10 %.
    await EventProducer(api.redis, stream=keys.events_shard(0)).publish_events(
        [
            stats(now - 600, 100, 86, 0, 81),
            stats(now - 300, 10, 10, 0, 1),
            *[
                Contact(ts=now - 200, source="crm", contact_id=f"c{i}", queue="presales",
                        channel="phone", action="completed", csat=score)
                for i, score in enumerate((5, 4, 2))
            ],
        ]
    )  # fmt: skip
    incident = await api.fire(subject="presales", title="客户 13812345678 投诉排队")
    await api.start_run(incident.id)
    await set_flag(api.redis, "auto_reply", "on", actor="li.wei")
    await SilenceStore(api.redis).create(
        {"subject": "nightly-export"},
        3600,
        reason="planned export",
        actor="li.wei",
        role="duty_manager",
    )
    return incident.id


async def test_outgoing_writes_notes_incoming_signs_and_the_log_keeps_it(api, data_dir: Path):
    incident_id = await seed_shift(api)
    status, draft = await api.call("PUT", "/v1/handover/notes", "duty_manager", body={
        "notes": "CRM 慢，已联系厂商；回访客户 13812345678",
        "suggestions": "大促前加排两名坐席",
    })  # fmt: skip
    assert status == 200 and draft["author"] == "t-duty_manager"
    assert "13812345678" not in draft["notes"]

    status, body = await api.call("GET", "/v1/handover", "viewer")
    assert status == 200 and body["timezone"] == "Asia/Shanghai"
    report, text = body["report"], body["markdown"]
    presales = report["figures"]["queues"]["presales"]
    assert (presales["offered"], presales["answered_in_sla"]) == (110, 82)
    assert presales["service_level"] == round(82 / 96, 4)
    assert presales["satisfaction"] == round(2 / 3, 4)
    assert [u["id"] for u in report["unresolved"]] == [incident_id]
    assert report["unresolved"][0]["owner"] == "duty_manager, oncall"  # its run's open steps
    titles = report["unresolved"][0]["next_steps"]
    assert titles and all(t in text for t in titles) and "check-queue" not in text
    assert "UTC" not in text and "CST" in text
    assert "| presales | phone | 110 | 96 | 85.4 % |" in text
    assert "flag `auto_reply` = on" in text and "planned export" in text
    assert "大促前加排两名坐席" in text and "13812345678" not in text

    await api.call("POST", f"/v1/incidents/{incident_id}/ack", "duty_manager")
    acked = (await api.call("GET", "/v1/handover", "viewer"))[1]["report"]["unresolved"][0]
    assert acked["owner"] == "t-duty_manager"
    status, reply = await api.call("POST", "/v1/handover/sign", "duty_manager")
    assert status == 409 and "incoming duty manager" in reply["error"]

    incoming, _ = await api.token_store.create("wang.fang", "duty_manager")
    status, entry = await api.call("POST", "/v1/handover/sign", token=incoming)
    assert status == 201 and entry["signed_by"] == "wang.fang"
    assert "incoming 接班: **wang.fang**" in entry["markdown"]
    signs = [r for r in await api.audit.read() if r["action"] == "handover.sign"]
    assert [(r["actor"], r["target"]) for r in signs] == [("wang.fang", entry["id"])]
    saved = data_dir / "duty-log" / f"{entry['id']}.md"
    assert saved.read_text(encoding="utf-8") == entry["markdown"]
    assert saved.stat().st_mode & 0o777 == 0o600

    found = (await api.call("GET", "/v1/handover/log?search=加排两名", "viewer"))[1]["shifts"]
    assert [s["id"] for s in found] == [entry["id"]] and "markdown" not in found[0]
    assert (await api.call("GET", "/v1/handover/log?search=nothing-like-it", "viewer"))[1] == {
        "shifts": []
    }
    status, one = await api.call("GET", f"/v1/handover/log/{entry['id']}", "viewer")
    assert status == 200 and one["markdown"] == entry["markdown"]
    # The next shift starts where the signed one ended, with an empty draft.
    after = (await api.call("GET", "/v1/handover", "viewer"))[1]["report"]
    assert after["since"] == entry["until"] and after["notes"] == ""


async def test_export_is_markdown_and_bad_input_is_a_clear_400(api):
    status, text = await api.call("GET", "/v1/handover.md", "viewer")
    assert status == 200 and text.startswith("# 值班交接 Shift handover")
    status, reply = await api.call("PUT", "/v1/handover/notes", "duty_manager", body={})
    assert status == 400 and "notes" in reply["error"]
    status, reply = await api.call("PUT", "/v1/handover/notes", "duty_manager",
                                   body={"notes": 5})  # fmt: skip
    assert status == 400 and "notes" in reply["error"]
    assert (await api.call("PUT", "/v1/handover/notes", "viewer", body={"notes": "x"}))[0] == 403
    assert (await api.call("POST", "/v1/handover/sign", "oncall"))[0] == 403
    assert (await api.call("GET", "/v1/handover/log/SHIFT-x", "viewer"))[0] == 404
