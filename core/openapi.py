"""OpenAPI 3.1 documents from route descriptions: pure functions, no web framework.

The monitor API (``api.openapi``) and the collector (``collector.openapi``)
each describe their routes as :class:`Operation` values (method, path, the
permission the handler declares, its query parameters, its request body and
responses); :func:`document` turns them into one OpenAPI 3.1 document. Bodies
and responses are msgspec types (the event contract's structs, the
Alertmanager payload) or plain JSON Schema maps; the types' schemas are
gathered under ``components.schemas`` by ``msgspec.json.schema_components``, so
a client generator sees one named schema per struct. Every operation that needs
a token says so (``bearer`` security scheme, 401 and 403 answers) and names the
permission in ``x-watchfloor-permission``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

OPENAPI_VERSION: Final = "3.1.0"
REF_TEMPLATE: Final = "#/components/schemas/{name}"
ERROR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_PATH_PARAM: Final = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
JSON: Final = "application/json"


@dataclass(frozen=True, slots=True)
class Param:
    """A query (or path) parameter."""

    name: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    where: str = "query"
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of an operation: its description and body (a msgspec type or a schema)."""

    description: str
    body: Any = None
    media: str = JSON


@dataclass(frozen=True, slots=True)
class Operation:
    """One (method, path) of a service."""

    method: str
    path: str
    name: str
    """The handler's name: the operation id."""
    summary: str = ""
    description: str = ""
    permission: str | None = None
    """The permission the handler declares; ``None``: public (no token)."""
    params: tuple[Param, ...] = ()
    body: Any = None
    """Request body: a msgspec type, a JSON Schema map, or ``None``."""
    body_media: tuple[str, ...] = (JSON,)
    body_required: bool = True
    replies: Mapping[int, Reply] = field(default_factory=dict)
    tag: str = ""
    websocket: bool = False


def path_params(path: str) -> list[str]:
    """Names of the ``{name}`` segments of a path template."""
    return _PATH_PARAM.findall(path)


def openapi_path(path: str) -> str:
    """aiohttp's ``{name:regex}`` segments as OpenAPI's ``{name}``."""
    return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def document(
    title: str, version: str, description: str, operations: Iterable[Operation]
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` (sorted by path, then method)."""
    ops = sorted(operations, key=lambda o: (openapi_path(o.path), o.method))
    types = _types(ops)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF_TEMPLATE)
    refs = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(openapi_path(op.path), {})[op.method.lower()] = _operation(op, refs)
    components = dict(components)
    components["Error"] = ERROR_SCHEMA
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A Watchfloor token (`watchfloor token create`).",
                }
            },
        },
        "security": [{"bearer": []}],
    }


def _types(ops: list[Operation]) -> list[Any]:
    found: list[Any] = []
    bodies = [op.body for op in ops] + [r.body for op in ops for r in op.replies.values()]
    for body in bodies:
        if body is not None and not isinstance(body, Mapping) and body not in found:
            found.append(body)
    return found


def _schema(body: Any, refs: Mapping[Any, Any]) -> Any:
    return dict(body) if isinstance(body, Mapping) else refs[body]


def _operation(op: Operation, refs: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.name, "summary": op.summary or op.name}
    if op.description:
        out["description"] = op.description
    if op.tag:
        out["tags"] = [op.tag]
    params = _parameters(op)
    if params:
        out["parameters"] = params
    if op.body is not None:
        schema = _schema(op.body, refs)
        out["requestBody"] = {
            "required": op.body_required,
            "content": {media: {"schema": schema} for media in op.body_media},
        }
    out["responses"] = _responses(op, refs)
    if op.permission is None:
        out["security"] = []
    else:
        out["x-watchfloor-permission"] = op.permission
    if op.websocket:
        out["x-websocket"] = True
    return out


def _parameters(op: Operation) -> list[dict[str, Any]]:
    declared = {(p.where, p.name): p for p in op.params}
    for name in path_params(op.path):
        declared.setdefault(("path", name), Param(name, where="path", required=True))
    out = []
    for p in declared.values():
        item: dict[str, Any] = {
            "name": p.name,
            "in": p.where,
            "required": p.required or p.where == "path",
            "schema": dict(p.schema),
        }
        if p.description:
            item["description"] = p.description
        out.append(item)
    return sorted(out, key=lambda i: (i["in"] != "path", i["name"]))


def _responses(op: Operation, refs: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    replies = dict(op.replies) or {200: Reply("OK", {"type": "object"})}
    if op.permission is not None:
        replies.setdefault(401, Reply("no token, or a token that is not valid"))
        replies.setdefault(403, Reply(f"the token's role lacks {op.permission}"))
        replies.setdefault(429, Reply("too many failed authentications from this address"))
    for status in sorted(replies):
        reply = replies[status]
        error = reply.body is None and status >= 400 and reply.media == JSON
        body = ERROR_SCHEMA if error else reply.body
        item: dict[str, Any] = {"description": reply.description}
        if body is not None:
            schema = {"$ref": REF_TEMPLATE.format(name="Error")} if body is ERROR_SCHEMA else None
            item["content"] = {reply.media: {"schema": schema or _schema(body, refs)}}
        out[str(status)] = item
    return out


def first_line(doc: str | None) -> str:
    """The first sentence-line of a docstring (the operation's summary)."""
    return (doc or "").strip().split("\n", 1)[0].strip()
