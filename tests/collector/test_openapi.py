"""GET /v1/openapi.json of the real collector: every route, the event contract's schema.

Fetched over HTTP from a real collector app on real Redis; routes compared with the
app's router both ways; shape checked by the monitor API test's checker; the request
bodies are the contract's own schema: an event the document's schema describes is
accepted by the real endpoint, and the Alertmanager payload's documented fields are
the ones a recorded real payload has.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.test_openapi import check_document, documented, operation, routes_of
from tests.collector.conftest import Running
from watchfloor.collector.openapi import DECLARED
from watchfloor.core.events import EVENT_TYPES

DATA = Path(__file__).resolve().parents[1] / "data" / "alertmanager"


async def fetch(running: Running, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(running.url + "/v1/openapi.json", headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None)


@pytest.fixture
async def doc(collector: Running) -> dict[str, Any]:
    status, body = await fetch(collector, collector.token)
    assert status == 200
    return body


def test_the_document_is_well_formed_openapi_3_1(doc: dict[str, Any]) -> None:
    assert check_document(doc) == []


def test_every_route_of_the_app_is_documented_and_declared(
    collector: Running, doc: dict[str, Any]
) -> None:
    assert routes_of(collector.app) == documented(doc)
    names = {r.handler.__name__ for r in collector.app.router.routes() if r.method != "HEAD"}
    assert names <= set(DECLARED), f"declare these in collector/openapi.py: {names - set(DECLARED)}"


async def test_reading_it_takes_a_token(collector: Running) -> None:
    assert (await fetch(collector, None))[0] == 401
    assert (await fetch(collector, "not-a-token"))[0] == 401


def test_the_events_body_is_the_contracts_schema(doc: dict[str, Any]) -> None:
    body = operation(doc, "POST", "/v1/events")["requestBody"]
    assert set(body["content"]) == {"application/json", "application/msgpack"}
    schema = body["content"]["application/json"]["schema"]
    refs = {item["$ref"].rsplit("/", 1)[1] for item in schema["items"]["anyOf"]}
    schemas = doc["components"]["schemas"]
    tags = {schemas[name]["properties"]["type"]["enum"][0] for name in refs}
    assert tags == set(EVENT_TYPES)
    health = schemas["Health"]
    assert health["properties"]["status"]["enum"] == ["degraded", "down", "up"]
    assert set(health["required"]) >= {"ts", "source", "component", "status"}


async def test_an_event_built_from_the_documented_schema_is_accepted(
    collector: Running, doc: dict[str, Any]
) -> None:
    health = doc["components"]["schemas"]["Health"]
    event = {"type": health["properties"]["type"]["enum"][0], "ts": time.time()}
    for name in health["required"]:
        prop = health["properties"][name]
        if name not in event:
            event[name] = prop["enum"][0] if "enum" in prop else "x" * prop.get("minLength", 1)
    async with (
        aiohttp.ClientSession() as session,
        session.post(collector.url + "/v1/events", json=[event], headers=collector.headers) as r,
    ):
        assert (r.status, (await r.json())["accepted"]) == (202, 1)


def test_the_alertmanager_body_names_every_field_alertmanager_sends(doc: dict[str, Any]) -> None:
    op = operation(doc, "POST", "/v1/integrations/alertmanager")
    schemas = doc["components"]["schemas"]
    payload = json.loads((DATA / "firing_grouped.json").read_text(encoding="utf-8"))
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AlertmanagerPayload"
    }
    assert set(payload) == set(schemas["AlertmanagerPayload"]["properties"])
    assert set(payload["alerts"][0]) == set(schemas["Alert"]["properties"])
    assert {"202", "400", "401", "403", "413", "415", "503"} <= set(op["responses"])
    assert op["x-watchfloor-permission"] == "send_events"
