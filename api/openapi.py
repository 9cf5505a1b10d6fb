"""``GET /v1/openapi.json`` of the monitor API: every route as an OpenAPI 3.1 document.

The routes come from the running app's router, the permission from the
handler's ``requires`` declaration, and the inputs from what the handler
declares through :mod:`api.inputs`: each ``Field(...)`` it reads with
``read_fields`` is a property of the request body (type, required, length,
choices, bounds), each ``query_int`` / ``query_choice`` / ``query_text`` a
query parameter, each ``{name}`` of the path a path parameter. They are read
from the handler's source (``ast``; the helpers it calls in its own module
are followed, with their literal arguments), so a field added to a handler is
in the document without a second declaration to keep in step. Reading the
document needs a token with ``read_board`` (every console role): the map of an
internal service's routes is not handed to whoever reaches its port.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from watchfloor.api.inputs import Field
from watchfloor.core.openapi import JSON, Operation, Param, Reply, document, first_line
from watchfloor.security.auth import PERMISSION_ATTR, PUBLIC_ATTR, requires
from watchfloor.security.roles import Permission

routes = web.RouteTableDef()

PATH: Final = "/v1/openapi.json"
QUERY_HELPERS: Final = frozenset({"query_int", "query_choice", "query_text"})
MAX_DEPTH: Final = 3


class _Unknown(Exception):
    """An expression whose value is not known without running the handler."""


@dataclass(slots=True)
class Inputs:
    """What one handler reads: body fields, query parameters, answers, WebSocket."""

    fields: dict[str, Field] = field(default_factory=dict)
    reads_body: bool = False
    query: dict[str, Param] = field(default_factory=dict)
    statuses: set[int] = field(default_factory=set)
    media: str = JSON
    websocket: bool = False


@functools.cache
def handler_inputs(handler: Callable[..., Any]) -> Inputs:
    """The inputs ``handler`` declares (see the module's docstring); read once per handler."""
    found = Inputs()
    func = inspect.unwrap(handler)
    env = {**func.__globals__, **inspect.getclosurevars(func).nonlocals}
    _scan(func, env, found, 0, set())
    return found


def _scan(func: Any, env: dict[str, Any], found: Inputs, depth: int, seen: set[Any]) -> None:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            _call(node, env, found, depth, seen)
        elif isinstance(node, ast.Attribute) and node.attr == "WebSocketResponse":
            found.websocket = True


def _call(node: ast.Call, env: dict[str, Any], found: Inputs, depth: int, seen: set[Any]) -> None:
    name = _callee(node)
    if name == "Field":
        _add_field(_field(node, env), found)
    elif name == "read_fields":
        found.reads_body = True
        _read_fields(node, env, found)
    elif name == "json_object":
        found.reads_body = True
    elif name in QUERY_HELPERS:
        param = _query(name, node, env)
        if param is not None:
            found.query[param.name] = param
    elif name in ("json_response", "Response"):
        _answer(node, env, found)
    if name is not None and depth < MAX_DEPTH:
        _follow(env.get(name), node, env, found, depth, seen)


def _read_fields(node: ast.Call, env: dict[str, Any], found: Inputs) -> None:
    """The fields of ``read_fields(request, F1, F2)`` or ``read_fields(request, *fields)``."""
    for arg in node.args[1:]:
        value = _maybe(arg.value if isinstance(arg, ast.Starred) else arg, env)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Field):
                _add_field(item, found)


def _answer(node: ast.Call, env: dict[str, Any], found: Inputs) -> None:
    """The status and media type of a response the handler builds."""
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    status = _maybe(keywords["status"], env) if "status" in keywords else 200
    if isinstance(status, int):
        found.statuses.add(status)
    media = _maybe(keywords.get("content_type"), env)
    if isinstance(media, str):
        found.media = media


def _follow(
    helper: Any, node: ast.Call, env: dict[str, Any], found: Inputs, depth: int, seen: set[Any]
) -> None:
    """Scan a helper of the handler's module, its parameters bound to the call's literals."""
    if not inspect.isfunction(helper) or helper.__module__ != env.get("__name__"):
        return
    bound = _bound(helper, node, env)
    key = (helper, repr(sorted(bound.items())))
    if key not in seen:  # a helper called with other literals reads other inputs
        seen.add(key)
        _scan(helper, {**env, **bound}, found, depth + 1, seen)


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _value(node: ast.AST, env: dict[str, Any]) -> Any:
    """The value of a constant expression (names looked up in ``env``)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        if node.id in ("str", "int", "float", "bool", "dict"):
            return {"str": str, "int": int, "float": float, "bool": bool, "dict": dict}[node.id]
        raise _Unknown(node.id)
    if isinstance(node, ast.Attribute):
        return getattr(_value(node.value, env), node.attr)
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_value(item, env) for item in node.elts)
    raise _Unknown(type(node).__name__)


def _maybe(node: ast.AST | None, env: dict[str, Any]) -> Any:
    if node is None:
        return None
    try:
        return _value(node, env)
    except (_Unknown, AttributeError):
        return None


def _field(node: ast.Call, env: dict[str, Any]) -> Field | None:
    """The ``Field(...)`` of a call; arguments known only at run time are left out."""
    args = [_maybe(arg, env) for arg in node.args]
    if not args or not isinstance(args[0], str):
        return None
    kwargs = {}
    for keyword in node.keywords:
        value = _maybe(keyword.value, env)
        if keyword.arg is not None and value is not None:
            kwargs[keyword.arg] = value
    try:
        return Field(*[a for a in args if a is not None], **kwargs)
    except TypeError:
        return None


def _add_field(value: Field | None, found: Inputs) -> None:
    if value is not None:
        found.fields[value.name] = value


def _query(helper: str, node: ast.Call, env: dict[str, Any]) -> Param | None:
    args = [_maybe(arg, env) for arg in node.args]
    keywords = {k.arg: _maybe(k.value, env) for k in node.keywords if k.arg}
    name = args[1] if len(args) > 1 else keywords.get("name")
    if not isinstance(name, str):
        return None
    if helper == "query_int":
        low, high = (args + [None] * 5)[3:5]
        schema: dict[str, Any] = {"type": "integer"}
        schema |= {"minimum": low} if isinstance(low, int) else {}
        schema |= {"maximum": high} if isinstance(high, int) else {}
    elif helper == "query_choice":
        choices = args[2] if len(args) > 2 else keywords.get("choices")
        schema = {"type": "string"}
        if isinstance(choices, tuple | list | set | frozenset):
            schema["enum"] = sorted(str(c) for c in choices)
    else:
        max_len = args[2] if len(args) > 2 else keywords.get("max_len", 200)
        schema = {"type": "string", "maxLength": max_len if isinstance(max_len, int) else 200}
    return Param(name, schema)


def _bound(helper: Any, node: ast.Call, env: dict[str, Any]) -> dict[str, Any]:
    """The helper's parameters bound to the call's literal arguments."""
    names = list(inspect.signature(helper).parameters)
    bound = {}
    for name, arg in zip(names, node.args, strict=False):
        value = _maybe(arg, env)
        if value is not None:
            bound[name] = value
    return bound


# --- the document ---------------------------------------------------------------------


def field_schema(f: Field) -> dict[str, Any]:
    """JSON Schema of one body field."""
    if f.kind is bool:
        return {"type": "boolean"}
    if f.kind in (int, float):
        schema: dict[str, Any] = {"type": "integer" if f.kind is int else "number"}
        schema |= {"minimum": f.min_value} if f.min_value is not None else {}
        schema |= {"maximum": f.max_value} if f.max_value is not None else {}
        return schema
    if f.kind is dict:
        return {
            "type": "object",
            "maxProperties": f.max_len,
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200},
        }
    schema = {"type": "string", "maxLength": f.max_len}
    if f.choices is not None:
        schema["enum"] = sorted(f.choices)
    return schema


def _body(found: Inputs) -> dict[str, Any] | None:
    if not found.reads_body:
        return None
    body: dict[str, Any] = {
        "type": "object",
        "properties": {n: field_schema(f) for n, f in sorted(found.fields.items())},
        "additionalProperties": False,
    }
    required = sorted(n for n, f in found.fields.items() if f.required)
    if required:
        body["required"] = required
    return body


def _replies(found: Inputs, route: web.AbstractRoute, body: Any) -> dict[int, Reply]:
    if found.websocket:
        return {101: Reply("switching to the WebSocket")}
    answer = {"type": "object"} if found.media == JSON else {"type": "string"}
    replies = {
        s: Reply("OK" if s < 400 else "refused", answer if s < 400 else None, found.media)
        for s in found.statuses | ({200} if all(s >= 400 for s in found.statuses) else set())
    }
    if body is not None or found.query:
        replies[400] = Reply("a field or parameter is refused (the error names it)")
    if "{" in (route.resource.canonical if route.resource else ""):
        replies[404] = Reply("no such item")
    return replies


def operations(app: web.Application) -> Iterator[Operation]:
    """Every route of ``app`` (HEAD left out: it is GET's twin)."""
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        handler = route.handler
        found = handler_inputs(handler)
        body = _body(found)
        public = getattr(handler, PUBLIC_ATTR, False)
        path = route.resource.canonical
        yield Operation(
            method=route.method,
            path=path,
            name=handler.__name__,
            summary=first_line(handler.__doc__) or handler.__name__,
            description=inspect.cleandoc(handler.__doc__ or ""),
            permission=None if public else str(getattr(handler, PERMISSION_ATTR, None)),
            params=tuple(sorted(found.query.values(), key=lambda p: p.name)),
            body=body,
            body_media=(JSON,),
            body_required=bool(body and body.get("required")),
            replies=_replies(found, route, body),
            tag=path.split("/")[2] if path.startswith("/v1/") else "meta",
            websocket=found.websocket,
        )


def build(app: web.Application) -> dict[str, Any]:
    return document(
        "Watchfloor monitor API",
        "1",
        "Incidents, the board, playbook runs, the audit log, tokens and the live feed.",
        operations(app),
    )


@routes.get(PATH)
@requires(Permission.READ_BOARD)
async def get_openapi(request: web.Request) -> web.Response:
    """The monitor API's OpenAPI 3.1 document."""
    return web.json_response(build(request.app))
