"""POST /v1/integrations/alertmanager: Alertmanager's webhook -> health events -> an outage.

Payloads are the ones the real Alertmanager 0.25 sent (tests/data/alertmanager/, recorded
with bench/alertmanager.py: firing, grouped, warning, resolved) and variants of them
(missing labels, hostile strings, huge), posted to a real collector app on real Redis;
their times are moved to now, as if just sent. The last test runs the real Alertmanager.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from tests.collector.conftest import Running, StartCollector, all_events
from watchfloor.collector.alertmanager import AlertMapping
from watchfloor.core.config import Config
from watchfloor.core.events import Event, Health, parse_ts, validate_event
from watchfloor.monitor.detector_set import build_detectors
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.lifecycle import Action
from watchfloor.monitor.rules import load_rules

DATA = Path(__file__).resolve().parents[1] / "data" / "alertmanager"
PATH = "/v1/integrations/alertmanager"


def recorded(name: str, *, ago_s: float = 90.0) -> dict[str, Any]:
    """A recorded payload with its times moved so that the earliest start is ``ago_s`` ago."""
    payload = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    alerts = [a for a in payload["alerts"] if isinstance(a, dict)]
    starts = [parse_ts(a["startsAt"]) for a in alerts if _is_time(a.get("startsAt"))]
    shift = time.time() - ago_s - min(starts)
    for alert in alerts:
        for name_ in ("startsAt", "endsAt"):
            value = alert.get(name_)
            if _is_time(value) and parse_ts(value) > 0:
                alert[name_] = _rfc3339(parse_ts(value) + shift)
    return payload


def _is_time(value: Any) -> bool:
    try:
        parse_ts(value)
    except ValueError:
        return False
    return True


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


async def post(running: Running, payload: Any, **headers: str) -> tuple[int, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    all_headers = {**running.headers, "Content-Type": "application/json", **headers}
    async with (
        aiohttp.ClientSession() as session,
        session.post(running.url + PATH, data=body, headers=all_headers) as r,
    ):
        return r.status, await r.json(content_type=None)


async def health_events(running: Running) -> list[Health]:
    return [e for e in await all_events(running.redis) if isinstance(e, Health)]


async def test_a_grouped_firing_notification_is_one_down_event_per_alert(
    collector: Running,
) -> None:
    payload = recorded("firing_grouped")
    status, answer = await post(collector, payload)
    assert (status, answer) == (202, {"accepted": 3, "rejected": [], "duplicates": 0})
    events = sorted(await health_events(collector), key=lambda e: e.id or "")
    expected = sorted(
        (
            f"am:{a['fingerprint']}:firing:{parse_ts(a['startsAt']):.0f}",
            a["labels"]["service"],
            "down",
            parse_ts(a["startsAt"]),
            a["annotations"]["summary"],
        )
        for a in payload["alerts"]
    )
    assert [(e.id, e.component, e.status, e.ts, e.message) for e in events] == expected
    assert {e.source for e in events} == {"alertmanager"}


async def test_a_warning_is_degraded_and_the_severity_mapping_is_configurable(
    start_collector: StartCollector, redis_url: str
) -> None:
    payload = recorded("firing_warning")
    default = await start_collector(redis_url)
    assert (await post(default, payload))[0] == 202
    assert [(e.component, e.status) for e in await health_events(default)] == [
        ("search", "degraded")
    ]
    await default.redis.flushall()
    strict = await start_collector(
        redis_url, collector={"alertmanager_degraded_severities": ("Info", "MINOR")}
    )
    assert (await post(strict, payload))[0] == 202
    assert [(e.component, e.status) for e in await health_events(strict)] == [("search", "down")]
    await strict.redis.flushall()
    payload["alerts"][0]["labels"]["severity"] = "minor"
    assert (await post(strict, payload))[0] == 202
    assert [e.status for e in await health_events(strict)] == ["degraded"]


async def test_a_resolved_notification_is_up_at_its_end(collector: Running) -> None:
    payload = recorded("resolved_grouped", ago_s=300)  # resolved 94 s after it started
    assert (await post(collector, payload))[0] == 202
    events = await health_events(collector)
    assert sorted((e.component, e.status, e.ts) for e in events) == sorted(
        ("checkout", "up", parse_ts(a["endsAt"])) for a in payload["alerts"]
    )


async def test_a_resent_notification_is_a_duplicate_but_the_same_alert_firing_again_is_not(
    collector: Running,
) -> None:
    payload = recorded("firing_grouped")
    assert (await post(collector, payload))[1]["accepted"] == 3
    status, answer = await post(collector, payload)
    assert (status, answer) == (202, {"accepted": 0, "rejected": [], "duplicates": 3})
    again = copy.deepcopy(payload)
    again["alerts"] = again["alerts"][:1]
    again["alerts"][0]["startsAt"] = _rfc3339(time.time() - 5)
    assert (await post(collector, again))[1] == {"accepted": 1, "rejected": [], "duplicates": 0}
    assert len(await health_events(collector)) == 4


async def test_the_component_is_the_first_configured_label_the_alert_has(
    start_collector: StartCollector, redis_url: str
) -> None:
    running = await start_collector(
        redis_url, collector={"alertmanager_component_labels": ("team", "instance", "service")}
    )
    payload = recorded("firing_grouped")
    payload["alerts"][0]["labels"]["team"] = "payments"
    assert (await post(running, payload))[0] == 202
    assert sorted(e.component for e in await health_events(running)) == sorted(
        ["payments", *(a["labels"]["instance"] for a in payload["alerts"][1:])]
    )


async def test_bad_alerts_are_named_by_index_and_field_and_the_others_kept(
    collector: Running,
) -> None:
    payload = recorded("missing_label")
    status, answer = await post(collector, payload)
    assert status == 400
    assert answer["accepted"] == 1
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [
        (1, "alerts[1].labels"),
        (2, "alerts[2].startsAt"),
    ]
    assert "service, job, alertname" in answer["rejected"][0]["error"]
    assert answer["error"] == "2 of 3 alerts refused"
    [kept] = await health_events(collector)
    assert kept.id is not None and payload["alerts"][0]["fingerprint"] in kept.id


async def test_hostile_strings_are_refused_per_alert_or_kept_as_sent(collector: Running) -> None:
    payload = recorded("hostile")
    body = json.dumps(payload, ensure_ascii=True).encode()  # keeps the \\ud800 escapes
    status, answer = await post(collector, body)
    assert status == 400
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [
        (0, "alerts[0].annotations"),  # a lone surrogate in the summary
        (2, "alerts[2].labels"),  # a 300-character component
        (3, "alerts[3].fingerprint"),  # ../../etc/passwd
        (4, "alerts[4].labels"),  # a number as a label value
        (6, "alerts[6].status"),  # neither firing nor resolved
        (7, "alerts[7]"),  # not an object
        (8, "alerts[8].labels"),  # no component label (its only key is a surrogate)
    ]
    assert answer["accepted"] == 2
    assert answer["rejected"][3]["error"].startswith("labels: Expected `str`, got `int`")
    by_component = {e.component: e for e in await health_events(collector)}
    hostile_name = payload["alerts"][1]["labels"]["service"]
    assert set(by_component) == {hostile_name, "checkout"}  # stored as sent, shown escaped
    long = by_component["checkout"].message or ""
    assert len(long) == 4096 and long.startswith("订单接口超时 ") and long.endswith("…")


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        (b"[]", 400, "JSON object"),
        (b'{"version": "3", "alerts": []}', 400, "version"),
        (b'{"version": "4", "alerts": {}}', 400, "alerts"),
        (b"{nope", 400, "not valid JSON"),
        (b"", 400, "empty"),
    ],
)
async def test_a_payload_that_is_not_one_is_refused_whole(
    collector: Running, payload: bytes, status: int, words: str
) -> None:
    answer = await post(collector, payload)
    assert answer[0] == status and words in answer[1]["error"]
    assert await health_events(collector) == []


async def test_a_huge_notification_is_kept_up_to_the_body_limit(collector: Running) -> None:
    template = recorded("firing_grouped")["alerts"][0]
    payload = recorded("firing_grouped")
    payload["alerts"] = [
        {**template, "fingerprint": f"{i:016x}", "labels": {"service": f"svc-{i % 50}"}}
        for i in range(2500)
    ]
    body = json.dumps(payload).encode()
    assert len(body) < 1024 * 1024
    status, answer = await post(collector, body)
    assert (status, answer["accepted"]) == (202, 2500)
    assert len(await health_events(collector)) == 2500
    payload["alerts"] *= 2
    status, answer = await post(collector, payload)
    assert status == 413 and "larger than" in answer["error"]


async def test_an_old_alert_is_brought_forward_to_what_the_monitor_still_evaluates(
    collector: Running,
) -> None:
    payload = recorded("firing_grouped", ago_s=3 * 86400)  # three days ago: past every window
    payload["alerts"][1]["startsAt"] = _rfc3339(time.time() + 3600)  # Prometheus's clock ahead
    before = time.time()
    assert (await post(collector, payload))[1]["accepted"] == 3
    after = time.time()
    config = collector.config
    reach = min(config.collector.max_behind_s, config.monitor.late_horizon_s) - 60
    stamps = sorted(e.ts for e in await health_events(collector))
    assert before - reach <= stamps[0] <= stamps[1] <= after - reach
    assert before <= stamps[2] <= after  # never ahead of the collector's clock


async def test_the_endpoint_takes_a_producer_token_and_refuses_where_signing_is_required(
    start_collector: StartCollector, redis_url: str
) -> None:
    running = await start_collector(redis_url)
    payload = recorded("firing_warning")
    assert (await post(running, payload, Authorization="Bearer nope"))[0] == 401
    signed = await start_collector(redis_url, collector={"require_signature": True})
    status, answer = await post(signed, payload)
    assert status == 401 and "cannot sign" in answer["error"]
    assert await health_events(running) == []


async def test_alerts_alertmanager_left_out_are_logged(
    collector: Running, caplog: pytest.LogCaptureFixture
) -> None:
    payload = recorded("firing_grouped")
    payload["truncatedAlerts"] = 7
    with caplog.at_level("WARNING", logger="watchfloor.collector.alertmanager"):
        assert (await post(collector, payload))[1]["accepted"] == 3
    assert any("truncated=7" in r.getMessage() for r in caplog.records)


# --- the monitor: the alerts feed the outage rules --------------------------------------


def engine_actions(events: list[Event], until: float) -> list[Action]:
    engine = Engine(build_detectors(load_rules()))
    actions = engine.process(sorted(events, key=lambda e: e.ts))
    return actions + engine.flush() + engine.tick(until)


async def test_an_outage_opens_from_the_alerts_and_clears_when_they_resolve(
    collector: Running,
) -> None:
    firing = recorded("firing_grouped", ago_s=300)
    resolved = recorded("resolved_grouped", ago_s=300)
    assert (await post(collector, firing))[0] == 202
    opened = engine_actions(await health_events(collector), time.time())
    # on the first alert's arrival, then confirmed by the evaluation: one fingerprint
    assert {(a.op, a.signal.rule, a.signal.subject) for a in opened} == {
        ("fire", "outage.component", "checkout")
    }
    assert opened[-1].signal.evidence["failed_probes"] == 3
    assert (await post(collector, resolved))[0] == 202
    both = engine_actions(await health_events(collector), time.time() + 600)
    ops = [(a.op, a.signal.subject) for a in both if a.op in ("fire", "clear")]
    assert ops[-1] == ("clear", "checkout") and set(ops[:-1]) == {("fire", "checkout")}


async def test_one_firing_alert_alone_is_an_outage_at_once(collector: Running) -> None:
    """An alert is already judged where it came from (its rule's ``for:``): one firing alert
    is decisive for the outage rule (``[outage] alert_sources``), not one probe of three."""
    payload = recorded("firing_grouped")
    payload["alerts"] = payload["alerts"][:1]
    assert (await post(collector, payload))[0] == 202
    actions = engine_actions(await health_events(collector), time.time())
    assert [(a.op, a.signal.rule) for a in actions if a.op == "fire"] == [
        ("fire", "outage.component")
    ]


def test_one_down_probe_from_an_ordinary_source_is_still_no_outage() -> None:
    alert = recorded("firing_warning")["alerts"][0]
    alert["labels"]["severity"] = "critical"
    started = parse_ts(alert["startsAt"])
    probe = msgspec.structs.replace(
        validate_event(AlertMapping.from_config(Config()).event(alert, started + 30)),
        source="probe-1",
    )
    assert probe.status == "down"
    assert engine_actions([probe], started + 60) == []


# --- the real Alertmanager --------------------------------------------------------------


def _post_alerts(url: str, alerts: list[dict[str, Any]]) -> int:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return int(answer.status)


async def _wait_for(running: Running, count: int, timeout: float = 15.0) -> list[Health]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await health_events(running)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} health events expected, got {await health_events(running)}")


def am_config(collector_url: str, token: str) -> str:
    return (
        "route:\n  receiver: watchfloor\n  group_by: [service]\n  group_wait: 0s\n"
        "  group_interval: 1s\n  repeat_interval: 4h\n"
        "receivers:\n  - name: watchfloor\n    webhook_configs:\n"
        f"      - url: {collector_url}{PATH}\n        send_resolved: true\n"
        "        http_config:\n          authorization:\n"
        f"            credentials: {token}\n"
    )


async def test_the_real_alertmanager_feeds_the_collector_firing_then_resolved(
    collector: Running,
) -> None:
    from bench.alertmanager import find_or_fetch, start

    binary = await asyncio.to_thread(find_or_fetch)
    proc = await asyncio.to_thread(start, am_config(collector.url, collector.token), binary=binary)
    try:
        started = datetime.now(UTC)
        alert = {
            "labels": {"alertname": "InstanceDown", "service": "order-api", "severity": "page"},
            "annotations": {"summary": "order-api has no healthy instance"},
            "startsAt": started.isoformat(),
        }
        assert await asyncio.to_thread(_post_alerts, proc.url, [alert]) == 200
        [down] = await _wait_for(collector, 1)
        assert (down.component, down.status, down.message) == (
            "order-api",
            "down",
            "order-api has no healthy instance",
        )
        assert down.ts == pytest.approx(started.timestamp(), abs=0.001)
        alert["endsAt"] = datetime.now(UTC).isoformat()
        assert await asyncio.to_thread(_post_alerts, proc.url, [alert]) == 200
        events = await _wait_for(collector, 2)
        assert sorted((e.component, e.status) for e in events) == [
            ("order-api", "down"),
            ("order-api", "up"),
        ]
    finally:
        await asyncio.to_thread(proc.stop)


def test_the_settings_load_from_toml_and_the_environment() -> None:
    from watchfloor.core.config import load_config

    config: Config = load_config(
        '[collector]\nalertmanager_component_labels = ["team", "service"]\n',
        {"WATCHFLOOR_COLLECTOR_ALERTMANAGER_DEGRADED_SEVERITIES": "warning, minor"},
    )
    assert config.collector.alertmanager_component_labels == ("team", "service")
    assert config.collector.alertmanager_degraded_severities == ("warning", "minor")
