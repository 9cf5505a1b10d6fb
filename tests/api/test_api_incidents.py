"""Incidents, boards, flags, whoami and the service endpoints of the monitor API."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import msgpack
import pytest
import redis.asyncio as aioredis

from tests.api.test_api_support import ApiStack, api_config, api_fixture
from watchfloor.api.app import api_task
from watchfloor.core import keys
from watchfloor.core.redis_server import free_port

api = api_fixture()


async def audit_actions(api: ApiStack) -> list[tuple[str, str, str, str]]:
    return [(r["actor"], r["action"], r["target"], r["outcome"]) for r in await api.audit.read()]


async def test_a_fired_incident_is_listed_acknowledged_and_resolved_with_an_audit_trail(api):
    incident = await api.fire()
    status, body = await api.call("GET", "/v1/incidents", "viewer")
    assert status == 200
    assert [i["id"] for i in body["incidents"]] == [incident.id]

    status, acked = await api.call("POST", f"/v1/incidents/{incident.id}/ack", "duty_manager",
                                   body={"note": "looking"})  # fmt: skip
    assert status == 200
    assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "t-duty_manager")

    status, resolved = await api.call("POST", f"/v1/incidents/{incident.id}/resolve",
                                      "duty_manager", body={"note": "queue drained"})  # fmt: skip
    assert (status, resolved["state"]) == (200, "resolved")

    status, again = await api.call("POST", f"/v1/incidents/{incident.id}/resolve", "duty_manager")
    assert status == 409 and "already resolved" in again["error"]

    status, detail = await api.call("GET", f"/v1/incidents/{incident.id}", "viewer")
    assert status == 200
    assert [e["event"] for e in detail["timeline"]] == ["opened", "acknowledged", "resolved"]
    assert detail["timeline"][1]["note"] == "looking"
    assert await audit_actions(api) == [
        ("t-duty_manager", "incident.ack", incident.id, "ok"),
        ("t-duty_manager", "incident.resolve", incident.id, "ok"),
        ("t-duty_manager", "incident.resolve", incident.id, "conflict"),
    ]


async def test_acknowledging_twice_is_a_conflict(api):
    incident = await api.fire()
    assert (await api.call("POST", f"/v1/incidents/{incident.id}/ack", "admin"))[0] == 200
    status, body = await api.call("POST", f"/v1/incidents/{incident.id}/ack", "admin")
    assert status == 409 and body["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/incidents/INC-20990101-00001"),
        ("POST", "/v1/incidents/INC-20990101-00001/ack"),
        ("POST", "/v1/incidents/INC-20990101-00001/resolve"),
        ("GET", "/v1/incidents/" + "x" * 500),
        ("GET", "/v1/no-such-endpoint"),
    ],
)
async def test_unknown_incidents_and_paths_are_404_json(api, method, path):
    status, body = await api.call(method, path, "admin")
    assert status == 404
    assert isinstance(body, dict) and body["error"]


async def test_a_note_is_added_to_the_timeline_and_audited(api):
    incident = await api.fire()
    status, _ = await api.call("POST", f"/v1/incidents/{incident.id}/note", "duty_manager",
                               body={"note": "客服热线排队严重"})  # fmt: skip
    assert status == 200
    timeline = await api.incidents.timeline(incident.id)
    assert timeline[-1]["event"] == "note" and timeline[-1]["note"] == "客服热线排队严重"
    assert (await audit_actions(api))[-1][1:] == ("incident.note", incident.id, "ok")


async def test_a_manual_incident_is_opened_by_its_author(api):
    status, body = await api.call("POST", "/v1/incidents", "duty_manager",
                                  body={"title": "Payment page slow", "severity": "major",
                                        "subject": "payments"})  # fmt: skip
    assert status == 201
    assert (body["kind"], body["state"], body["subject"]) == ("manual", "open", "payments")
    listed = (await api.call("GET", "/v1/incidents?kind=manual", "viewer"))[1]["incidents"]
    assert [i["id"] for i in listed] == [body["id"]]
    assert (await audit_actions(api))[-1][:3] == ("t-duty_manager", "incident.create", body["id"])


LIST_FILTERS = [
    ("", {"q1-sla", "q2-sla", "crm-outage"}),
    ("?kind=outage", {"crm-outage"}),
    ("?severity=critical", {"q2-sla"}),
    ("?subject=q1", {"q1-sla"}),
    ("?state=acknowledged", {"q2-sla"}),
    ("?state=resolved", {"old-sla"}),
    ("?state=all", {"q1-sla", "q2-sla", "crm-outage", "old-sla"}),
    ("?state=all&kind=sla&limit=2", {"q2-sla", "q1-sla"}),
    ("?kind=surge", set()),
]


@pytest.mark.parametrize(("query", "expected"), LIST_FILTERS)
async def test_the_incident_list_filters_by_state_kind_severity_and_subject(api, query, expected):
    names = {}
    seeds = [("old", "sla", "minor"), ("q1", "sla", "major"), ("q2", "sla", "critical"),
             ("crm", "outage", "major")]  # fmt: skip
    for n, (subject, kind, severity) in enumerate(seeds):
        incident = await api.fire(subject, severity, kind=kind, rule=f"{kind}.rule",
                                  at=1_700_000_000.0 + n)  # fmt: skip
        names[incident.id] = f"{subject}-{kind}"
    ids = {v: k for k, v in names.items()}
    await api.incidents.resolve(ids["old-sla"], actor="x")
    await api.incidents.acknowledge(ids["q2-sla"], actor="x")
    status, body = await api.call("GET", "/v1/incidents" + query, "viewer")
    assert status == 200
    assert {names[i["id"]] for i in body["incidents"]} == expected


def queue_row(name: str, updated_at: float, channel: str = "chat") -> bytes:
    return msgpack.packb({
        "queue": name, "channel": channel, "waiting": 12, "longest_wait_s": 40.0,
        "agents_available": 2, "agents_busy": 9, "service_level": 0.8, "abandon_rate": 0.05,
        "asa_s": 14.0, "offered_5m": 90, "trend": [3, 5, 12], "sla_threshold_s": 30,
        "updated_at": updated_at, "source": "acd",
    })  # fmt: skip


async def test_board_rows_carry_their_age_and_turn_stale_when_their_source_stops(api):
    now = time.time()
    await api.redis.hset(
        keys.QUEUES,
        mapping={"fresh": queue_row("fresh", now - 2), "old": queue_row("old", now - 300, "phone")},
    )
    health = {"subject": "crm", "kind": "component", "status": "down", "latency_ms": None,
              "error_rate": 0.5, "message": "timeout", "updated_at": now - 100,
              "last_seen": now - 100}  # fmt: skip
    await api.redis.hset(keys.HEALTH, "crm", msgpack.packb(health))
    status, body = await api.call("GET", "/v1/queues", "viewer")
    assert status == 200
    rows = {r["queue"]: r for r in body["queues"]}
    assert rows["fresh"]["stale"] is False and 1.5 < rows["fresh"]["age_s"] < 10
    assert rows["old"]["stale"] is True and rows["old"]["age_s"] >= 300
    assert [r["queue"] for r in (await api.call("GET", "/v1/queues?channel=phone", "viewer"))[1]
            ["queues"]] == ["old"]  # fmt: skip
    status, body = await api.call("GET", "/v1/health?status=down", "oncall")
    assert status == 200 and body["health"][0]["subject"] == "crm"
    assert body["health"][0]["stale"] is True


async def test_a_row_without_a_time_is_stale_and_nan_figures_are_null(api):
    row = msgpack.unpackb(queue_row("q", 0.0))
    del row["updated_at"]
    row["service_level"] = float("nan")
    await api.redis.hset(keys.QUEUES, "q", msgpack.packb(row))
    status, body = await api.call("GET", "/v1/queues", "viewer")
    assert status == 200
    assert (body["queues"][0]["stale"], body["queues"][0]["service_level"]) == (True, None)


async def test_flags_are_listed_by_name(api):
    flag = {"name": "auto_reply", "value": "on", "set_by": "run:R1", "at": 1.0, "run": "R1"}
    await api.redis.hset(keys.FLAGS, "auto_reply", msgpack.packb(flag))
    assert await api.call("GET", "/v1/flags", "viewer") == (200, {"flags": {"auto_reply": flag}})


WHOAMI = [
    ("viewer", ["read_board"]),
    ("oncall", ["read_board", "run_steps"]),
    ("security_officer", ["read_audit", "read_board"]),
]


@pytest.mark.parametrize(("role", "permissions"), WHOAMI)
async def test_whoami_names_the_token_role_and_permissions(api, role, permissions):
    status, body = await api.call("GET", "/v1/whoami", role)
    assert (status, body) == (200, {"name": f"t-{role}", "role": role,
                                    "permissions": permissions})  # fmt: skip


async def test_healthz_needs_no_token_and_reports_engine_lag(api):
    now = time.time()
    await api.redis.set(keys.SHARDS, 1)
    await api.redis.hset(
        keys.engine_status(0),
        mapping={"watermark": now - 7, "lag_s": 2.5, "events": 10, "updated_at": now},
    )
    status, body = await api.call("GET", "/healthz", None)
    assert status == 200
    assert (body["status"], body["redis"], body["lag_s"]) == ("ok", "up", 2.5)


async def test_healthz_is_degraded_before_the_engine_reports(api):
    status, body = await api.call("GET", "/healthz", None)
    assert (status, body["status"]) == (200, "degraded")
    assert body["problems"] == ["engine has not reported"]


async def test_metrics_are_prometheus_text_without_a_token(api):
    await api.fire()
    await api.call("GET", "/v1/incidents", "viewer")
    status, text = await api.call("GET", "/metrics", None)
    assert status == 200
    assert "watchfloor_incidents_open 1" in text
    counter = 'watchfloor_api_requests_total{method="GET",route="/v1/incidents",status="200"}'
    assert f"{counter} 1" in text
    assert "watchfloor_api_live_clients 0" in text


async def test_a_duty_manager_sets_a_flag_by_hand_and_it_is_audited(api):
    status, flag = await api.call("PUT", "/v1/flags/auto_reply", "duty_manager",
                                  body={"value": "on"})  # fmt: skip
    assert (status, flag["value"], flag["set_by"]) == (200, "on", "t-duty_manager")
    assert (await api.call("GET", "/v1/flags", "viewer"))[1]["flags"]["auto_reply"] == flag
    assert (await audit_actions(api))[-1] == ("t-duty_manager", "flag.set", "auto_reply", "ok")


async def test_a_silence_is_created_listed_and_expired(api):
    body = {"matchers": {"rule": "sla.*", "subject": "chat-*"}, "duration_s": 3600,
            "reason": "双十一 planned overflow"}  # fmt: skip
    status, silence = await api.call("POST", "/v1/silences", "duty_manager", body=body)
    assert status == 201 and silence["matchers"] == body["matchers"]
    listed = (await api.call("GET", "/v1/silences", "viewer"))[1]["silences"]
    assert [s["id"] for s in listed] == [silence["id"]]
    assert (await api.call("DELETE", f"/v1/silences/{silence['id']}", "duty_manager"))[0] == 200
    assert (await api.call("GET", "/v1/silences", "viewer"))[1]["silences"] == []
    assert [a[1] for a in await audit_actions(api)] == ["silence.create", "silence.expire"]


async def test_the_api_task_serves_until_stopped(redis_url, data_dir):
    port = free_port()
    config = api_config(data_dir, port=port)
    redis = aioredis.Redis.from_url(redis_url)
    stop = asyncio.Event()
    task = asyncio.create_task(api_task(config, redis)(stop))
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("the API never answered")
        stop.set()
        await asyncio.wait_for(task, 5)
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/healthz")
    await redis.aclose()


async def test_customer_data_typed_into_a_note_is_masked_before_it_is_stored(api):
    incident = await api.fire()
    note = "客户 13812345678 投诉, 邮箱 zhang.san@example.com"
    status, _ = await api.call("POST", f"/v1/incidents/{incident.id}/note", "duty_manager",
                               body={"note": note})  # fmt: skip
    assert status == 200
    stored = (await api.incidents.timeline(incident.id))[-1]["note"]
    assert "13812345678" not in stored and "138****5678" in stored
    assert "zhang.san@" not in stored
    audited = json.dumps(await api.audit.read(), ensure_ascii=False)
    assert "13812345678" not in audited and "zhang.san@" not in audited


HISTORY = [
    ("?state=resolved&q=hotline", {"hotline"}),
    ("?state=all&q=HOT", {"hotline", "hot-vip"}),
    ("?state=all&q=surge%20on", {"售前咨询"}),
    ("?state=all&kind=surge", {"售前咨询"}),
    ("?state=all&since=1700000100", {"hot-vip", "售前咨询"}),
    ("?state=all&until=2023-11-14T22:15:00Z", {"hotline"}),
    ("?state=resolved&since=1700000000&until=1700000150&q=hot", {"hotline"}),
]


@pytest.mark.parametrize(("query", "expected"), HISTORY)
async def test_resolved_incidents_are_found_by_text_kind_and_time(api, query, expected):
    fired = [("hotline", "sla", 1_700_000_000.0, "Longest wait on hotline is 1m"),
             ("hot-vip", "sla", 1_700_000_100.0, "Longest wait on hot-vip is 2m"),
             ("售前咨询", "surge", 1_700_000_200.0, "Contact surge on 售前咨询: 3.0x")]  # fmt: skip
    names = {}
    for subject, kind, at, title in fired:
        incident = await api.fire(subject, kind=kind, rule=f"{kind}.rule", at=at, title=title)
        names[incident.id] = subject
        if subject == "hotline":
            await api.incidents.resolve(incident.id, actor="x")
    status, body = await api.call("GET", "/v1/incidents" + query, "viewer")
    assert status == 200, body
    assert {names[i["id"]] for i in body["incidents"]} == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [("?since=yesterday", "since"), ("?until=1e99", "until"), ("?kind=flood", "kind"),
     ("?since=1700000200&until=1700000100", "until"), ("?q=" + "x" * 600, "q")],
)  # fmt: skip
async def test_a_bad_history_filter_is_a_400_naming_the_field(api, query, field):
    status, body = await api.call("GET", "/v1/incidents" + query, "viewer")
    assert status == 400 and f"'{field}'" in body["error"], body
