"""Parsing of request bodies and query strings, strictly, into plain values.

Every handler reads its input through these helpers, so hostile input (bad
JSON, an array instead of an object, wrong types, unknown fields, oversized
strings, bad query parameters) is a 400 naming the field, never a 500. The
body size limit itself (1 MiB) is aiohttp's ``client_max_size`` (413). Free
text typed by people (notes, titles, reasons) is PII-masked on the way in
(``security.pii.mask_text``): a phone number pasted into a note is never
stored, shown or audited in clear.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from monitor.api.errors import BadRequest, NotFound
from security.pii import mask_text

MAX_TEXT: Final = 200
MAX_NOTE: Final = 4000


@dataclass(frozen=True, slots=True)
class Field:
    """One accepted body field: its JSON type, whether it is required, its limits."""

    name: str
    kind: type = str
    required: bool = False
    max_len: int = MAX_TEXT
    choices: Collection[str] | None = None
    min_value: float | None = None
    max_value: float | None = None
    mask: bool = False
    """Free text typed by a person: customer PII in it is masked before it is stored."""


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``."""
    raw = await request.read()  # raises 413 past client_max_size
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    return value


async def read_fields(request: web.Request, *fields: Field) -> dict[str, Any]:
    """The body checked against ``fields``: unknown fields and bad values are a 400."""
    body = await json_object(request)
    known = {f.name: f for f in fields}
    for name in body:
        if name not in known:
            raise BadRequest(f"unknown field {name[:60]!r}")
    values: dict[str, Any] = {}
    for f in fields:
        value = body.get(f.name)
        if value is None:
            if f.required:
                raise BadRequest(f"field {f.name!r} is required")
            continue
        values[f.name] = check_value(f, value)
    return values


def check_value(f: Field, value: Any) -> Any:
    if f.kind is str:
        return _check_text(f, value)
    if f.kind is bool:
        if not isinstance(value, bool):
            raise BadRequest(f"field {f.name!r} must be true or false")
        return value
    if f.kind in (int, float):
        return _check_number(f, value)
    if f.kind is dict:
        return _check_map(f, value)
    raise BadRequest(f"field {f.name!r} has an unsupported type")  # pragma: no cover


def _check_text(f: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"field {f.name!r} must be a string")
    value = value.strip()
    if f.required and not value:
        raise BadRequest(f"field {f.name!r} must not be empty")
    if len(value) > f.max_len:
        raise BadRequest(f"field {f.name!r} is longer than {f.max_len} characters")
    if f.choices is not None and value not in f.choices:
        raise BadRequest(f"field {f.name!r} must be one of {', '.join(sorted(f.choices))}")
    return mask_text(value) if f.mask else value


def _check_map(f: Field, value: Any) -> dict[str, str]:
    """A small map of short strings to short strings (``max_len`` entries at most)."""
    if not isinstance(value, dict) or len(value) > f.max_len:
        raise BadRequest(f"field {f.name!r} must be an object of at most {f.max_len} entries")
    for key, item in value.items():
        if not isinstance(item, str) or not item or len(item) > MAX_TEXT or len(key) > MAX_TEXT:
            raise BadRequest(f"field {f.name!r} must map names to non-empty strings")
    return dict(value)


def _check_number(f: Field, value: Any) -> float | int:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if f.kind is int and isinstance(value, float):
        ok = False
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        raise BadRequest(f"field {f.name!r} must be a {'whole ' if f.kind is int else ''}number")
    if f.min_value is not None and value < f.min_value:
        raise BadRequest(f"field {f.name!r} must be at least {f.min_value:g}")
    if f.max_value is not None and value > f.max_value:
        raise BadRequest(f"field {f.name!r} must be at most {f.max_value:g}")
    return value


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name!r} must be between {low} and {high}")
    return value


def query_choice(
    request: web.Request, name: str, choices: Collection[str], default: str | None = None
) -> str | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if text not in choices:
        raise BadRequest(f"query parameter {name!r} must be one of {', '.join(sorted(choices))}")
    return text


def query_text(request: web.Request, name: str, max_len: int = MAX_TEXT) -> str | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if len(text) > max_len:
        raise BadRequest(f"query parameter {name!r} is longer than {max_len} characters")
    return text


def path_id(request: web.Request, name: str, max_len: int = 128) -> str:
    """A path parameter; absurdly long ones are simply unknown (404)."""
    value = request.match_info[name]
    if len(value) > max_len:
        raise NotFound(f"{name} not found")
    return value
