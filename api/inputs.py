"""Parsing of request bodies and query strings, strictly, into plain values.

Every handler reads its input through these helpers, so hostile input (bad
JSON, an array instead of an object, wrong types, unknown fields, oversized
strings, bad query parameters, strings that are not Unicode such as a
JSON-escaped lone surrogate ``"\\ud800"``) is a 400 naming the field, never a
500, and it is refused before anything is written. Bodies are never
compressed (they are small JSON): any ``Content-Encoding`` is a 415, because
aiohttp's transparent decoding turns a truncated gzip stream into an empty
body, which an endpoint would take for ``{}``. The body size limit itself
(1 MiB) is aiohttp's ``client_max_size`` (413). Free
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

from watchfloor.api.errors import BadRequest, NotFound, UnsupportedEncoding
from watchfloor.security.pii import mask_text

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


IDENTITY: Final = ("", "identity")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in IDENTITY:
        # Unread, so the server must not drain it after the answer either: aiohttp
        # would decode it then and log a traceback for a body nobody asked for.
        request.content.feed_eof()
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding[:40]!r} is not accepted: send the JSON body uncompressed"
        )
    raw = await request.read()  # raises 413 past client_max_size
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    for name, item in value.items():
        if not _is_unicode(name) or not _is_unicode(item):
            raise BadRequest(
                f"field {name[:60]!r} contains a character that is not valid Unicode"
                " (a lone surrogate escape such as \\ud800)"
            )
    return value


def _is_unicode(value: Any) -> bool:
    """False if a string in ``value`` (keys included) cannot be stored as UTF-8."""
    stack = [value]
    while stack:  # iterative: json.loads already bounded the depth, this keeps it cheap
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


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
