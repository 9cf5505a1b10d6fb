"""The event contract v1: validation, normalisation, typed records and codecs.

This module is the only place that knows what an event looks like. Producers'
maps (from JSON or msgpack) go through :func:`validate_batch`, which returns the
typed, frozen records of the good events and a precise error (index, field,
reason) for each bad one; the rest of Watchfloor only ever sees the records.
On the bus the records travel as msgpack maps (:func:`encode_batch` /
:func:`decode_batch`), with ``ts`` already normalised to float Unix seconds.

Validation is table driven: each event type declares its fields once
(:data:`SCHEMAS`) and a small set of checkers does the work, so adding an
optional field is one line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Final

import msgpack

# Limits of DESIGN.md (contract).
MAX_BODY_BYTES: Final = 1024 * 1024
MAX_BATCH_EVENTS: Final = 10_000
MAX_EVENT_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 256
MAX_NESTING: Final = 32

# Plausible event times: 2000-01-01 .. 2100-01-01 (UTC).
MIN_TS: Final = 946_684_800.0
MAX_TS: Final = 4_102_444_800.0
MAX_COUNT: Final = 1_000_000_000
MAX_SECONDS: Final = 10_000_000.0  # ~115 days: longer waits are a producer bug

CHANNELS: Final = frozenset({"phone", "chat", "email", "social", "ticket"})
CONTACT_ACTIONS: Final = frozenset({"offered", "answered", "abandoned", "completed"})
HEALTH_STATUSES: Final = frozenset({"up", "degraded", "down"})
DIRECTIONS: Final = frozenset({"to_customer", "from_customer", "internal"})
ACCESS_ACTIONS: Final = frozenset({"view", "search", "export", "download", "print", "delete"})

# Fields encrypted at rest by the collector (security.crypto), per event type.
SENSITIVE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "agent.message": ("text",),
    "social.mention": ("author",),
}


class EventError(Exception):
    """Base error of the event contract."""


class BatchError(EventError):
    """The body as a whole could not be read (not a list, bad JSON, too large...)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class FieldError:
    """Why one event of a batch was rejected."""

    index: int
    field: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "error": self.error}


# --- typed records ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event carries. ``ts`` is float Unix seconds (event time)."""

    type: ClassVar[str] = ""
    ts: float
    source: str
    id: str | None = None
    tenant: str | None = None

    def to_map(self) -> dict[str, Any]:
        """The event as a contract map (``None`` fields left out)."""
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats(Event):
    type: ClassVar[str] = "queue.stats"
    queue: str
    channel: str
    waiting: int
    longest_wait_s: float
    agents_available: int
    agents_busy: int
    offered: int | None = None
    answered: int | None = None
    abandoned: int | None = None
    answered_in_sla: int | None = None
    interval_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact(Event):
    type: ClassVar[str] = "contact"
    contact_id: str
    queue: str
    channel: str
    action: str
    wait_s: float | None = None
    handle_s: float | None = None
    csat: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Health(Event):
    type: ClassVar[str] = "health"
    component: str
    status: str
    latency_ms: float | None = None
    error_rate: float | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Event):
    type: ClassVar[str] = "heartbeat"


@dataclass(frozen=True, slots=True, kw_only=True)
class SocialMention(Event):
    type: ClassVar[str] = "social.mention"
    platform: str
    topic: str
    text: str
    author: str | None = None
    followers: int | None = None
    url: str | None = None
    sentiment: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMessage(Event):
    type: ClassVar[str] = "agent.message"
    agent_id: str
    conversation_id: str
    channel: str
    direction: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DataAccess(Event):
    type: ClassVar[str] = "data.access"
    actor: str
    action: str
    resource: str
    records: int
    ip: str | None = None
    ok: bool | None = None


EVENT_CLASSES: Final[dict[str, type[Event]]] = {
    cls.type: cls
    for cls in (QueueStats, Contact, Health, Heartbeat, SocialMention, AgentMessage, DataAccess)
}
EVENT_TYPES: Final = frozenset(EVENT_CLASSES)

# --- field checkers -------------------------------------------------------------
# A checker takes the raw value and returns the normalised one, or raises
# _Invalid with the reason. They are plain closures: this is the hot path.


class _Invalid(Exception):
    pass


Checker = Callable[[Any], Any]


def _string(max_chars: int = MAX_NAME_CHARS, *, allow_empty: bool = False) -> Checker:
    def check(value: Any) -> str:
        if type(value) is not str:
            raise _Invalid(f"must be a string, got {_kind(value)}")
        if not value and not allow_empty:
            raise _Invalid("must not be empty")
        if len(value) > max_chars:
            raise _Invalid(f"longer than {max_chars} characters")
        return value

    return check


def _choice(options: frozenset[str]) -> Checker:
    listed = ", ".join(sorted(options))

    def check(value: Any) -> str:
        if type(value) is not str or value not in options:
            raise _Invalid(f"must be one of {listed}, got {_short(value)}")
        return value

    return check


def _integer(lo: int = 0, hi: int = MAX_COUNT) -> Checker:
    def check(value: Any) -> int:
        kind = type(value)
        if kind is float and value.is_integer():
            value = int(value)
        elif kind is not int:
            raise _Invalid(f"must be an integer, got {_kind(value)}")
        if value < lo or value > hi:
            raise _Invalid(f"must be between {lo} and {hi}, got {value}")
        return value

    return check


def _number(lo: float = 0.0, hi: float = MAX_SECONDS, *, open_lo: bool = False) -> Checker:
    def check(value: Any) -> float:
        kind = type(value)
        if kind is int:
            value = _int_to_float(value)
        elif kind is not float:
            raise _Invalid(f"must be a number, got {_kind(value)}")
        if value != value or value in (math.inf, -math.inf):
            raise _Invalid("must be a finite number")
        if value < lo or value > hi or (open_lo and value == lo):
            bound = f"above {lo}" if open_lo else f"between {lo} and {hi}"
            raise _Invalid(f"must be {bound}, got {value}")
        return value

    return check


def _int_to_float(value: int) -> float:
    if abs(value) > 2**53:
        raise _Invalid(f"is out of range: {_short(value)}")
    return float(value)


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Invalid(f"must be true or false, got {_kind(value)}")
    return value


def parse_ts(value: Any) -> float:
    """Normalise an event time (Unix seconds or RFC 3339 string) to float seconds."""
    kind = type(value)
    if kind is float or kind is int:
        ts = _int_to_float(value) if kind is int else value
        if ts != ts or ts in (math.inf, -math.inf):
            raise _Invalid("must be a finite number")
    elif kind is str:
        ts = _parse_rfc3339(value)
    else:
        raise _Invalid(f"must be Unix seconds or an RFC 3339 string, got {_kind(value)}")
    if ts < MIN_TS or ts > MAX_TS:
        raise _Invalid(f"must lie between 2000-01-01 and 2100-01-01, got {value!r}")
    return ts


def _parse_rfc3339(text: str) -> float:
    # RFC 3339 needs a full date, a time and an offset; fromisoformat alone would
    # also take a bare date or a naive time.
    if len(text) > 40 or len(text) < 19 or text[10] not in "Tt ":
        raise _Invalid(f"is not an RFC 3339 date-time: {_short(text)}")
    try:
        moment = datetime.fromisoformat(text.upper().replace(" ", "T", 1))
    except ValueError:
        raise _Invalid(f"is not an RFC 3339 date-time: {_short(text)}") from None
    if moment.tzinfo is None:
        raise _Invalid(f"has no UTC offset: {_short(text)}")
    return moment.timestamp()


_KIND_NAMES: Final = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "list",
    tuple: "list",
    dict: "map",
    bytes: "binary",
}


def _kind(value: Any) -> str:
    return _KIND_NAMES.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- schemas ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Schema:
    cls: type[Event]
    required: tuple[tuple[str, Checker], ...]
    optional: tuple[tuple[str, Checker], ...]
    known: frozenset[str] = field(default=frozenset())


_NAME = _string()
_ID = _string()
_TEXT = _string(MAX_EVENT_BYTES, allow_empty=True)
_CHANNEL = _choice(CHANNELS)
_COUNT = _integer()
_SECONDS = _number()

_COMMON_REQUIRED: tuple[tuple[str, Checker], ...] = (("ts", parse_ts), ("source", _NAME))
_COMMON_OPTIONAL: tuple[tuple[str, Checker], ...] = (("id", _ID), ("tenant", _NAME))


def _schema(
    cls: type[Event],
    required: tuple[tuple[str, Checker], ...] = (),
    optional: tuple[tuple[str, Checker], ...] = (),
) -> _Schema:
    req = _COMMON_REQUIRED + required
    opt = _COMMON_OPTIONAL + optional
    known = frozenset(name for name, _ in req + opt) | {"type"}
    return _Schema(cls, req, opt, known)


SCHEMAS: Final[dict[str, _Schema]] = {
    "queue.stats": _schema(
        QueueStats,
        (
            ("queue", _NAME),
            ("channel", _CHANNEL),
            ("waiting", _COUNT),
            ("longest_wait_s", _SECONDS),
            ("agents_available", _COUNT),
            ("agents_busy", _COUNT),
        ),
        (
            ("offered", _COUNT),
            ("answered", _COUNT),
            ("abandoned", _COUNT),
            ("answered_in_sla", _COUNT),
            ("interval_s", _number(0.0, 86_400.0, open_lo=True)),
        ),
    ),
    "contact": _schema(
        Contact,
        (
            ("contact_id", _ID),
            ("queue", _NAME),
            ("channel", _CHANNEL),
            ("action", _choice(CONTACT_ACTIONS)),
        ),
        (("wait_s", _SECONDS), ("handle_s", _SECONDS), ("csat", _integer(1, 5))),
    ),
    "health": _schema(
        Health,
        (("component", _NAME), ("status", _choice(HEALTH_STATUSES))),
        (
            ("latency_ms", _number(0.0, 3_600_000.0)),
            ("error_rate", _number(0.0, 1.0)),
            ("message", _string(4096, allow_empty=True)),
        ),
    ),
    "heartbeat": _schema(Heartbeat),
    "social.mention": _schema(
        SocialMention,
        (("platform", _NAME), ("topic", _NAME), ("text", _TEXT)),
        (
            ("author", _string(1024)),
            ("followers", _COUNT),
            ("url", _string(2048)),
            ("sentiment", _number(-1.0, 1.0)),
        ),
    ),
    "agent.message": _schema(
        AgentMessage,
        (
            ("agent_id", _NAME),
            ("conversation_id", _ID),
            ("channel", _CHANNEL),
            ("direction", _choice(DIRECTIONS)),
            ("text", _TEXT),
        ),
    ),
    "data.access": _schema(
        DataAccess,
        (
            ("actor", _NAME),
            ("action", _choice(ACCESS_ACTIONS)),
            ("resource", _string(1024)),
            ("records", _COUNT),
        ),
        (("ip", _string(64)), ("ok", _boolean)),
    ),
}


# --- validation -------------------------------------------------------------------------


@dataclass(slots=True)
class BatchResult:
    """Outcome of validating one batch: the good events and why the others failed."""

    events: list[Event]
    errors: list[FieldError]
    indexes: list[int] = field(default_factory=list)
    """Position in the batch of each accepted event (same order as ``events``)."""

    @property
    def rejected(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.errors]


def validate_event(raw: Any, index: int = 0) -> Event:
    """Validate one raw event map; raise :class:`FieldError`-carrying ``InvalidEvent``."""
    if not isinstance(raw, dict):
        raise InvalidEvent(FieldError(index, "", f"event must be a map, got {_kind(raw)}"))
    etype = raw.get("type")
    schema = SCHEMAS.get(etype) if type(etype) is str else None
    if schema is None:
        reason = "is missing" if etype is None else f"unknown event type {_short(etype)}"
        raise InvalidEvent(FieldError(index, "type", reason))
    if _estimated_size(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent(FieldError(index, "", f"event larger than {MAX_EVENT_BYTES} bytes"))
    values: dict[str, Any] = {}
    name = ""
    try:
        for name, check in schema.required:
            value = raw.get(name)
            if value is None:
                raise _Invalid("is required")
            values[name] = check(value)
        for name, check in schema.optional:
            value = raw.get(name)
            if value is not None:
                values[name] = check(value)
    except _Invalid as exc:
        raise InvalidEvent(FieldError(index, name, f"{name} {exc}")) from None
    return schema.cls(**values)


class InvalidEvent(EventError):
    def __init__(self, error: FieldError) -> None:
        super().__init__(error.error)
        self.error = error


def validate_batch(items: Any) -> BatchResult:
    """Validate a decoded batch. Raises :class:`BatchError` only if it is not a list."""
    if not isinstance(items, list):
        raise BatchError(f"a batch must be a list of events, got {_kind(items)}")
    if len(items) > MAX_BATCH_EVENTS:
        raise BatchError(
            f"a batch holds at most {MAX_BATCH_EVENTS} events, got {len(items)}", status=413
        )
    result = BatchResult([], [])
    for index, raw in enumerate(items):
        try:
            event = validate_event(raw, index)
        except InvalidEvent as exc:
            result.errors.append(exc.error)
            continue
        result.events.append(event)
        result.indexes.append(index)
    return result


def _estimated_size(raw: dict[str, Any]) -> int:
    # Upper bound of the encoded size without encoding: 16 bytes of framing per
    # field plus the length of every string (UTF-8 is at most 4 bytes a char).
    size = 0
    for key, value in raw.items():
        size += 16 + len(key)
        if type(value) is str:
            size += len(value) if value.isascii() else 4 * len(value)
        elif isinstance(value, list | dict | bytes):
            size += len(_safe_pack(value))
    return size


def _safe_pack(value: Any) -> bytes:
    try:
        return msgpack.packb(value, default=str)
    except (ValueError, TypeError, OverflowError):
        return b"x" * (MAX_EVENT_BYTES + 1)


# --- body decoding (producer side) ------------------------------------------------------


def decode_json_body(body: bytes) -> Any:
    """Decode a JSON request body, with a clear :class:`BatchError` on any failure."""
    _check_body_size(body)
    try:
        return json.loads(body)
    except RecursionError:
        raise BatchError("JSON nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchError(f"body is not valid JSON: {exc}") from None


def decode_msgpack_body(body: bytes) -> Any:
    """Decode a msgpack request body, with a clear :class:`BatchError` on any failure."""
    _check_body_size(body)
    try:
        return msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=False,
            max_array_len=MAX_BATCH_EVENTS * 2,
            max_map_len=4096,
            max_str_len=MAX_EVENT_BYTES,
            max_bin_len=MAX_EVENT_BYTES,
            max_ext_len=MAX_EVENT_BYTES,
        )
    except msgpack.ExtraData:
        raise BatchError("body is not valid msgpack: extra data after the batch") from None
    except (ValueError, msgpack.UnpackException, RecursionError, TypeError) as exc:
        raise BatchError(f"body is not valid msgpack: {exc}") from None


def _check_body_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise BatchError(f"body larger than {MAX_BODY_BYTES} bytes", status=413)
    if not body:
        raise BatchError("body is empty")


# --- bus codec ------------------------------------------------------------------------------


def event_from_map(data: Mapping[str, Any]) -> Event:
    """Rebuild a record from a map written by :func:`encode_batch` (trusted input)."""
    cls = EVENT_CLASSES[data["type"]]
    return cls(**{k: v for k, v in data.items() if k != "type"})


def encode_batch(events: Iterable[Event]) -> bytes:
    """msgpack bytes of a list of events, as one entry of the events stream carries them."""
    return msgpack.packb([e.to_map() for e in events], use_bin_type=True)


def decode_batch(data: bytes) -> list[Event]:
    """Inverse of :func:`encode_batch`."""
    return [event_from_map(m) for m in msgpack.unpackb(data, raw=False)]


def events_to_json(events: Iterable[Event]) -> str:
    """JSON Lines of events (used by the simulator's file output and replay)."""
    return "".join(json.dumps(e.to_map(), ensure_ascii=False) + "\n" for e in events)
