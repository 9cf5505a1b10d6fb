"""GET /v1/openapi.json of the real monitor API: every route in it, nothing else, well formed.

The document is fetched over HTTP from a real API app; its routes are compared with
``app.router.routes()`` both ways; its shape is checked against OpenAPI 3.1's rules
(:func:`check_document`, also used by the collector's test); and what it says of the
handlers' inputs is checked against what the real handlers do: each documented integer
or enum query parameter is refused with a 400 naming it when given a bad value, an
undocumented body field is refused, and the documented required fields are the ones a
handler asks for.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.test_api_support import ApiStack, api_fixture
from watchfloor.core.incidents import SEVERITIES
from watchfloor.security.roles import ROLES

api = api_fixture()

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PARAM_IN = {"query", "path", "header", "cookie"}
TEMPLATE = re.compile(r"\{([^}]+)\}")


def check_document(doc: dict[str, Any]) -> list[str]:
    """What is wrong with ``doc`` as an OpenAPI 3.1 document (the structural rules)."""
    problems: list[str] = []
    if not re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi"))):
        problems.append(f"openapi is {doc.get('openapi')!r}, not 3.1.x")
    info = doc.get("info", {})
    if not isinstance(info.get("title"), str) or not isinstance(info.get("version"), str):
        problems.append("info needs a title and a version (strings)")
    schemes = doc.get("components", {}).get("securitySchemes", {})
    schemas = doc.get("components", {}).get("schemas", {})
    for requirement in doc.get("security", []):
        problems += [f"security names unknown scheme {n}" for n in requirement if n not in schemes]
    seen_ids: set[str] = set()
    for path, item in doc.get("paths", {}).items():
        if not path.startswith("/"):
            problems.append(f"path {path!r} does not start with /")
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            if method not in METHODS:
                problems.append(f"{where}: not an HTTP method")
                continue
            problems += _check_operation(where, path, op, schemes, seen_ids)
    for ref in _refs(doc):
        name = ref.removeprefix("#/components/schemas/")
        if not ref.startswith("#/components/schemas/") or name not in schemas:
            problems.append(f"$ref {ref!r} does not resolve")
    return problems


def _check_operation(
    where: str, path: str, op: dict[str, Any], schemes: dict[str, Any], seen_ids: set[str]
) -> list[str]:
    problems = []
    op_id = op.get("operationId")
    if not isinstance(op_id, str) or op_id in seen_ids:
        problems.append(f"{where}: operationId {op_id!r} missing or not unique")
    seen_ids.add(str(op_id))
    responses = op.get("responses")
    if not isinstance(responses, dict) or not responses:
        problems.append(f"{where}: no responses")
    for status, answer in (responses or {}).items():
        if not re.fullmatch(r"[1-5]\d\d|default|[1-5]XX", status):
            problems.append(f"{where}: response code {status!r}")
        if not isinstance(answer.get("description"), str):
            problems.append(f"{where}: response {status} has no description")
    problems += _check_parameters(where, path, op.get("parameters", []))
    body = op.get("requestBody")
    if body is not None and not body.get("content"):
        problems.append(f"{where}: requestBody without content")
    for requirement in op.get("security", []):
        problems += [f"{where}: unknown scheme {n}" for n in requirement if n not in schemes]
    return problems


def _check_parameters(where: str, path: str, params: list[dict[str, Any]]) -> list[str]:
    problems, declared_path = [], set()
    for param in params:
        if param.get("in") not in PARAM_IN or not param.get("name") or "schema" not in param:
            problems.append(f"{where}: parameter {param} needs name, in and schema")
        if param.get("in") == "path":
            declared_path.add(param["name"])
            if param.get("required") is not True:
                problems.append(f"{where}: path parameter {param['name']} must be required")
    if declared_path != set(TEMPLATE.findall(path)):
        problems.append(f"{where}: path parameters {declared_path} do not match the template")
    return problems


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def routes_of(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves, HEAD (GET's twin) left out."""
    return {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, item in doc["paths"].items() for m in item}


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["paths"][path][method.lower()]
    return found


async def fetch(api: ApiStack, role: str | None = "viewer") -> tuple[int, Any]:
    return await api.call("GET", "/v1/openapi.json", role)


@pytest.fixture
async def doc(api: ApiStack) -> dict[str, Any]:
    status, body = await fetch(api)
    assert status == 200
    return body


def test_the_document_is_well_formed_openapi_3_1(doc: dict[str, Any]) -> None:
    assert check_document(doc) == []


def test_the_checker_finds_what_is_wrong() -> None:
    broken = {
        "openapi": "3.0.0",
        "info": {"title": "x"},
        "paths": {
            "v1/x/{id}": {"get": {"operationId": "a", "responses": {}}},
            "/y": {"fetch": {}, "post": {"operationId": "a", "responses": {"200": {}},
                                          "requestBody": {"content": {}},
                                          "security": [{"nope": []}]}},
        },
        "components": {"schemas": {"A": {"$ref": "#/components/schemas/B"}}},
    }  # fmt: skip
    assert len(check_document(broken)) == 11


async def test_every_route_of_the_app_is_documented_and_nothing_else(
    api: ApiStack, doc: dict[str, Any], serve_app: Any
) -> None:
    from watchfloor.api.app import create_app
    from watchfloor.core.config import Config

    app = create_app(Config(), api.redis)
    assert routes_of(app) == documented(doc)
    assert ("GET", "/v1/openapi.json") in documented(doc)


async def test_reading_it_takes_a_token_of_any_console_role(api: ApiStack) -> None:
    assert (await fetch(api, None))[0] == 401
    for role in sorted(ROLES - {"producer"}):
        assert (await fetch(api, role))[0] == 200, role
    assert (await fetch(api, "producer"))[0] == 403


def test_security_follows_each_handlers_declaration(doc: dict[str, Any]) -> None:
    public = {
        (m.upper(), p) for p, item in doc["paths"].items() for m, op in item.items()
        if op.get("security") == []
    }  # fmt: skip
    assert public == {
        ("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/v1/ack/{token}"),
        ("POST", "/v1/ack/{token}"),
    }  # fmt: skip
    tokens = operation(doc, "POST", "/v1/tokens")
    assert tokens["x-watchfloor-permission"] == "manage_tokens"
    assert {"401", "403"} <= set(tokens["responses"])


def test_body_fields_are_the_ones_the_handler_declares(doc: dict[str, Any]) -> None:
    body = operation(doc, "POST", "/v1/incidents")["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    assert sorted(schema["properties"]) == ["severity", "subject", "title"]
    assert sorted(schema["required"]) == ["severity", "subject", "title"]
    assert schema["properties"]["severity"]["enum"] == sorted(SEVERITIES)
    assert schema["additionalProperties"] is False
    ack = operation(doc, "POST", "/v1/incidents/{id}/ack")["requestBody"]["content"]
    assert list(ack["application/json"]["schema"]["properties"]) == ["note"]
    listing = operation(doc, "GET", "/v1/incidents")
    assert {p["name"] for p in listing["parameters"]} >= {"state", "limit", "since", "until"}
    assert operation(doc, "GET", "/v1/live")["x-websocket"] is True


async def test_each_documented_strict_query_parameter_is_one_the_handler_checks(
    api: ApiStack, doc: dict[str, Any]
) -> None:
    checked = 0
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op is None or "{" in path or op.get("x-websocket"):
            continue
        for param in op.get("parameters", []):
            schema = param["schema"]
            if schema.get("type") != "integer" and "enum" not in schema:
                continue
            status, answer = await api.call("GET", f"{path}?{param['name']}=zz-not-valid")
            assert status == 400 and param["name"] in answer["error"], (path, param, answer)
            checked += 1
    assert checked >= 8


async def test_an_undocumented_body_field_is_refused_by_the_handler(
    api: ApiStack, doc: dict[str, Any]
) -> None:
    schema = operation(doc, "POST", "/v1/incidents")["requestBody"]["content"]
    props = schema["application/json"]["schema"]["properties"]
    good = {"title": "manual", "severity": "minor", "subject": "crm"}
    assert set(good) == set(props)
    assert (await api.call("POST", "/v1/incidents", body=good))[0] == 201
    status, answer = await api.call("POST", "/v1/incidents", body={**good, "zz": "x"})
    assert status == 400 and "unknown field" in answer["error"]
    missing = {k: v for k, v in good.items() if k != "severity"}
    status, answer = await api.call("POST", "/v1/incidents", body=missing)
    assert status == 400 and "severity" in answer["error"]
