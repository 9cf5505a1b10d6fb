"""The monitor's ``/metrics`` on a real floor: collector, engine and API on a real Redis.

Producers' events go through a real collector app, a real engine worker
(``MonitorService``) turns them into the board and incidents, a real playbook
runner starts a run, and the real monitor API app serves ``/metrics``. The
exposition is parsed back with prometheus_client's own parser, so the checks
are about figures, not about text layout. The last tests hold the Grafana
dashboard in docs/grafana to what these two ``/metrics`` export.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.api.test_api_support import ApiStack, api_config, start_api
from tests.collector.conftest import ADMIN, Running, make_config
from tests.collector.test_http_ingest import post
from watchfloor.api.app import create_app as create_api_app
from watchfloor.collector.app import create_app as create_collector_app
from watchfloor.collector.service import connect_redis
from watchfloor.core import keys
from watchfloor.core.config import MonitorConfig, RedisConfig
from watchfloor.monitor.service import MonitorService

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "watchfloor.json"
QUEUES = ('presale "vip" \\ chat', "售后-电话", "after{sale},x=1")
"""Queue names as producers may send them: quotes, backslashes, braces, Chinese."""


@dataclass
class Floor:
    api: ApiStack
    collector: Running
    service: MonitorService

    async def monitor_metrics(self) -> list[Sample]:
        return samples((await scrape(self.api.url))[1])

    async def drain(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            await self.service.step()
        await self.service.commit(force=True)


async def scrape(url: str, accept: str | None = None) -> tuple[str, str]:
    """(content type, body) of ``GET {url}/metrics``."""
    headers = {"Accept": accept} if accept else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/metrics", headers=headers) as r,
    ):
        assert r.status == 200
        return r.headers["Content-Type"], await r.text()


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def by_queue(found: Iterable[Sample], name: str) -> dict[str, float]:
    return {s.labels["queue"]: s.value for s in found if s.name == name}


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    """The one sample named ``name`` whose labels include ``labels``."""
    [match] = [s for s in found if s.name == name and labels.items() <= s.labels.items()]
    return match.value


@pytest.fixture
async def floor(redis_url: str, serve_app: Any, data_dir: Path) -> AsyncIterator[Floor]:
    api, api_redis = await start_api(redis_url, serve_app, data_dir)
    config = make_config(data_dir)
    config = dataclasses.replace(
        config,
        redis=RedisConfig(shards=1),
        monitor=MonitorConfig(block_ms=20, allowed_lateness_s=0.0),
    )
    redis = connect_redis(redis_url)
    app = create_collector_app(config, redis, background=False)
    collector = Running(await serve_app(app), ADMIN, config, redis, app)
    service = MonitorService(redis, config, consumer_name="m1")
    await service.start()
    yield Floor(api, collector, service)
    await api.session.close()
    await api_redis.aclose()
    await redis.aclose()


def stats(queue: str, channel: str, ts: float, **figures: Any) -> dict[str, Any]:
    return {"type": "queue.stats", "ts": ts, "source": "acd-1", "queue": queue,
            "channel": channel, **figures}  # fmt: skip


def health(component: str, status: str, ts: float, **extra: Any) -> dict[str, Any]:
    return {"type": "health", "ts": ts, "source": "probe", "component": component,
            "status": status, **extra}  # fmt: skip


async def feed(floor: Floor, events: list[dict[str, Any]]) -> None:
    status, answer = await post(floor.collector, json.dumps(events).encode())
    assert (status, answer["rejected"]) == (202, []), answer
    await floor.drain()


async def test_the_board_is_exported_per_queue_and_component_as_the_engine_computed_it(
    floor: Floor,
) -> None:
    now = time.time() - 5
    await feed(floor, [
        stats(QUEUES[0], "chat", now, waiting=7, longest_wait_s=42.5, agents_available=3,
              agents_busy=9, offered=20, answered=16, abandoned=4, answered_in_sla=12),
        stats(QUEUES[1], "phone", now, waiting=0, longest_wait_s=0.0, agents_available=5,
              agents_busy=1),
        health("order-api", "down", now, latency_ms=2500.0, error_rate=0.5),
        health("payments", "up", now, latency_ms=40.0),
    ])  # fmt: skip
    found = await floor.monitor_metrics()
    vip = {"queue": QUEUES[0], "channel": "chat"}
    assert value(found, "watchfloor_queue_waiting", **vip) == 7
    assert value(found, "watchfloor_queue_longest_wait_seconds", **vip) == 42.5
    assert value(found, "watchfloor_queue_agents_available", **vip) == 3
    assert value(found, "watchfloor_queue_agents_busy", **vip) == 9
    assert value(found, "watchfloor_queue_service_level", **vip) == 12 / 16
    assert value(found, "watchfloor_queue_abandon_rate", **vip) == 4 / 20
    assert value(found, "watchfloor_queue_service_level_target", **vip) == 0.8
    phone = {"queue": QUEUES[1], "channel": "phone"}
    assert value(found, "watchfloor_queue_agents_available", **phone) == 5
    levels = {s.labels["queue"] for s in found if s.name == "watchfloor_queue_service_level"}
    assert levels == {QUEUES[0]}, "no answered contacts on the phone queue: no service level"
    statuses = {
        (s.labels["component"], s.labels["status"]): s.value
        for s in found
        if s.name == "watchfloor_component_status"
    }
    assert statuses[("order-api", "down")] == 1 and statuses[("order-api", "up")] == 0
    assert statuses[("payments", "up")] == 1 and statuses[("payments", "down")] == 0
    assert value(found, "watchfloor_component_latency_seconds", component="order-api") == 2.5


HOSTILE = {
    'quote " and backslash \\': 'quote " and backslash \\',
    "brace} comma, equals= ": "brace} comma, equals= ",
    'x"} 1\n# TYPE fake_metric counter\nfake_metric_total 99': (
        'x"} 1\\x0a# TYPE fake_metric counter\\x0afake_metric_total 99'
    ),
    "tab\tcr\rnul\x00": "tab\\x09cr\\x0dnul\\x00",
    "bidi \u202eevil": "bidi \\u202eevil",
    "售后 😀": "售后 😀",
}
"""Queue name as stored -> the label value ``/metrics`` gives it (controls made visible)."""


def board_row(queue: str, waiting: int) -> bytes:
    row = {"queue": queue, "channel": "chat", "waiting": waiting, "longest_wait_s": 1.0,
           "agents_available": 1, "agents_busy": 1, "service_level": None,
           "abandon_rate": None, "updated_at": time.time()}  # fmt: skip
    return msgpack.packb(row, use_bin_type=True)


@pytest.mark.parametrize("accept", [None, "application/openmetrics-text; version=1.0.0"])
async def test_hostile_queue_and_component_names_cannot_break_the_exposition(
    floor: Floor, accept: str | None
) -> None:
    redis = floor.collector.redis
    for waiting, name in enumerate(HOSTILE):
        await redis.hset(keys.QUEUES, name, board_row(name, waiting))
        health_row = {"subject": name, "kind": "component", "status": "down",
                      "updated_at": time.time()}  # fmt: skip
        await redis.hset(keys.HEALTH, name, msgpack.packb(health_row, use_bin_type=True))
    content_type, text = await scrape(floor.api.url, accept)
    if accept:
        from prometheus_client.openmetrics.parser import (
            text_string_to_metric_families as openmetrics_families,
        )

        assert content_type.startswith("application/openmetrics-text")
        found = [s for f in openmetrics_families(text) for s in f.samples]
    else:
        assert content_type.startswith("text/plain; version=0.0.4")
        found = samples(text)
    waiting = {s.labels["queue"]: s.value for s in found if s.name == "watchfloor_queue_waiting"}
    assert waiting == {label: float(i) for i, label in enumerate(HOSTILE.values())}
    down = {
        s.labels["component"]
        for s in found
        if s.name == "watchfloor_component_status" and s.labels["status"] == "down" and s.value
    }
    assert down == set(HOSTILE.values())
    assert not [s for s in found if s.name.startswith("fake_metric")]


async def test_a_malformed_accept_header_gets_the_plain_text_format(floor: Floor) -> None:
    content_type, text = await scrape(floor.api.url, "text/plain; version=abc")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert value(samples(text), "watchfloor_redis_up") == 1


async def test_open_incidents_are_counted_by_kind_severity_and_state_and_runs_by_activity(
    floor: Floor,
) -> None:
    api = floor.api
    sla = await api.fire("chat-vip", "major")
    await api.fire("order-api", "critical", kind="outage", rule="outage.probe")
    await api.fire("presale", "major", rule="sla.other")
    gone = await api.fire("after-sale", "minor", rule="sla.third")
    status, _ = await api.call("POST", f"/v1/incidents/{sla.id}/ack", body={})
    assert status == 200
    status, _ = await api.call("POST", f"/v1/incidents/{gone.id}/resolve", body={"note": "ok"})
    assert status == 200
    await api.start_run(sla.id)
    found = await floor.monitor_metrics()
    by = {
        (s.labels["kind"], s.labels["severity"], s.labels["state"]): s.value
        for s in found
        if s.name == "watchfloor_incidents_open_by_kind" and s.value
    }
    assert by == {
        ("sla", "major", "acknowledged"): 1,
        ("outage", "critical", "open"): 1,
        ("sla", "major", "open"): 1,
    }
    assert value(found, "watchfloor_incidents_open") == 3
    assert value(found, "watchfloor_playbook_runs_active") == 1
    assert value(found, "watchfloor_redis_up") == 1


async def test_each_api_app_counts_only_its_own_requests(
    floor: Floor, redis_url: str, serve_app: Any, data_dir: Path
) -> None:
    """Registries are per application: a second API in the same process starts from zero."""
    for _ in range(3):
        await floor.api.call("GET", "/v1/queues", "viewer")
    second_redis = aioredis.Redis.from_url(redis_url)
    second = await serve_app(create_api_app(api_config(data_dir), second_redis))
    try:
        async with aiohttp.ClientSession() as session:
            headers = floor.api.headers("viewer")
            async with session.get(f"{second}/v1/health", headers=headers) as r:
                assert r.status == 200
        first = await floor.monitor_metrics()
        other = samples((await scrape(second))[1])
    finally:
        await second_redis.aclose()
    queues = {"method": "GET", "route": "/v1/queues", "status": "200"}
    health = {"method": "GET", "route": "/v1/health", "status": "200"}
    assert value(first, "watchfloor_api_requests_total", **queues) == 3
    assert value(other, "watchfloor_api_requests_total", **health) == 1
    assert not [s for s in other if s.labels.get("route") == "/v1/queues"]
    assert not [s for s in first if s.labels.get("route") == "/v1/health"]


# --- the Grafana dashboard -----------------------------------------------------------------

GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset"})
PANEL_TYPES = frozenset({"row", "timeseries", "stat", "state-timeline", "table", "bargauge"})
BUILTIN_VARIABLES = frozenset({"__rate_interval", "__interval", "__range"})


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(series names, label names) a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = {name.strip() for m in GROUPING.finditer(text) for name in m.group(1).split(",")}
    text = GROUPING.sub(" ", text)
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    words = re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)\s*(\()?", text)
    return {m.group(1) for m in words if not m.group(2)} - KEYWORDS, labels - {""}


def test_the_promql_reader_finds_series_and_labels() -> None:
    names, labels = promql_names(
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{x=~"$q", y!="}"}[5m]))) '
        "+ on (z) b * 2 > bool 1 or vector(0)"
    )
    assert (names, labels) == ({"a_bucket", "b"}, {"le", "x", "y", "z"})


def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    found = [
        (f"panel {p['title']!r} {t['refId']}", t["expr"])
        for p in board["panels"]
        for t in p.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            metric, label = match.groups()
            found.append((f"variable {variable['name']}", f"{metric}{{{label}!=''}}"))
    return found


def test_the_dashboard_is_a_dashboard_grafana_imports_as_is() -> None:
    board = dashboard()
    assert board["title"] and board["uid"] and board["schemaVersion"] >= 36
    assert board.get("id") is None, "an exported dashboard carries no database id"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource", "prometheus")  # fmt: skip
    ids, cells = set(), set()
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES and panel["title"]
        assert panel["id"] not in ids
        ids.add(panel["id"])
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in "xywh") and pos["x"] >= 0
        assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0
        covered = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                   for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not covered & cells, f"panel {panel['title']!r} overlaps another"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs)
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"]
            used = set(re.findall(r"\$(\w+)", target["expr"]))
            assert used <= set(variables) | BUILTIN_VARIABLES, (panel["title"], used)
    kinds = {p["type"] for p in board["panels"]}
    assert {"timeseries", "stat", "state-timeline"} <= kinds


async def test_every_dashboard_query_names_only_series_the_real_metrics_export(
    floor: Floor,
) -> None:
    now = time.time() - 5
    await feed(floor, [
        stats(QUEUES[0], "chat", now, waiting=7, longest_wait_s=42.5, agents_available=3,
              agents_busy=9, offered=20, answered=16, abandoned=4, answered_in_sla=12),
        health("order-api", "down", now, latency_ms=2500.0, error_rate=0.5),
    ])  # fmt: skip
    status, answer = await post(floor.collector, json.dumps([{"type": "contact"}]).encode())
    assert status == 202 and answer["rejected"], "one rejected event, for the rejected series"
    exported: dict[str, set[str]] = {}
    for url in (floor.api.url, floor.collector.url):
        for sample in samples((await scrape(url))[1]):
            exported.setdefault(sample.name, set()).update(sample.labels)
    for where, expr in queries(dashboard()):
        names, labels = promql_names(expr)
        assert names, f"{where} names no series: {expr}"
        missing = names - set(exported)
        assert not missing, f"{where} reads series /metrics does not export: {missing}"
        known = set().union(*(exported[n] for n in names))
        assert labels <= known, f"{where} reads labels no series of it has: {labels - known}"


async def test_service_level_targets_follow_the_rules_file_per_queue_and_its_changes(
    redis_client: aioredis.Redis, serve_app: Any, data_dir: Path
) -> None:
    rules = data_dir / "rules.toml"
    rules.write_text('[sla.queues."vip-chat"]\nservice_level_target = 0.95\n')
    config = dataclasses.replace(api_config(data_dir), monitor=MonitorConfig(rules_file=str(rules)))
    url = await serve_app(create_api_app(config, redis_client))
    for queue in ("vip-chat", "presale"):
        await redis_client.hset(keys.QUEUES, queue, board_row(queue, 1))

    async def targets() -> dict[str, float]:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as r:
            found = samples(await r.text())
        return by_queue(found, "watchfloor_queue_service_level_target")

    assert await targets() == {"vip-chat": 0.95, "presale": 0.8}
    rules.write_text('[sla.queues."vip-chat"]\nservice_level_target = 0.9\n')
    os.utime(rules, ns=(time.time_ns() + 10**9,) * 2)  # a new mtime even on a coarse clock
    assert await targets() == {"vip-chat": 0.9, "presale": 0.8}
    rules.write_text("[sla]\nservice_level_target = 7\n")  # out of range: refused
    os.utime(rules, ns=(time.time_ns() + 2 * 10**9,) * 2)
    assert await targets() == {"vip-chat": 0.9, "presale": 0.8}, "the last good rules stay"


async def test_without_redis_the_scrape_says_so_and_keeps_the_process_counters(
    private_redis: Any, serve_app: Any, data_dir: Path
) -> None:
    api, redis = await start_api(private_redis.url, serve_app, data_dir)
    try:
        await api.call("GET", "/v1/queues", "viewer")
        private_redis.kill()
        _, text = await scrape(api.url)
    finally:
        await api.session.close()
        await redis.aclose()
    found = samples(text)
    assert value(found, "watchfloor_redis_up") == 0
    assert value(found, "watchfloor_api_requests_total", route="/v1/queues") == 1
    assert not [s for s in found if s.name.startswith(("watchfloor_queue_", "watchfloor_inc"))]
