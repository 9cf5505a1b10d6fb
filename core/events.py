"""The event contract v1: validation, normalisation, typed records and codecs.

This module is the only place that knows what an event looks like. Each event
type is one frozen ``msgspec.Struct`` below whose annotations *are* the
schema (types, enums, ranges, lengths); ``type`` is the struct tag. Producers'
bodies go through :func:`validate_body` (or :func:`validate_batch` for maps
already decoded), which returns the typed records of the good events and a
precise error (index, field, reason) for each bad one; the rest of Watchfloor
only ever sees the records. On the bus the records travel as msgpack maps
(:func:`encode_batch` / :func:`decode_batch`) with ``ts`` normalised to float
Unix seconds.

Speed: a whole batch is first decoded and validated in one C pass (msgspec);
only when that fails is the batch decoded loosely and each item checked on its
own to name every bad event while keeping the good ones. See
``bench/codec.py`` and docs/BENCHMARKS.md for the figures that chose msgspec.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal

import msgspec
from msgspec import Meta

from watchfloor.core import vocabulary
from watchfloor.core.vocabulary import (
    AccessAction,
    Channel,
    ComplaintAction,
    ContactAction,
    Direction,
    HealthStatus,
    LogisticsAction,
    OrderAction,
)

# Limits of DESIGN.md (contract).
MAX_BODY_BYTES: Final = 1024 * 1024
MAX_BATCH_EVENTS: Final = 10_000
MAX_EVENT_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 256

# Plausible event times: 2000-01-01 .. 2100-01-01 (UTC).
MIN_TS: Final = 946_684_800.0
MAX_TS: Final = 4_102_444_800.0
MAX_COUNT: Final = 1_000_000_000
MAX_SECONDS: Final = 10_000_000.0  # ~115 days: longer waits are a producer bug

# The enums' words live in core.vocabulary; these sets are for membership tests.
CHANNELS: Final = frozenset(vocabulary.CHANNELS)
CONTACT_ACTIONS: Final = frozenset(vocabulary.CONTACT_ACTIONS)
HEALTH_STATUSES: Final = frozenset(vocabulary.HEALTH_STATUSES)
DIRECTIONS: Final = frozenset(vocabulary.DIRECTIONS)
ACCESS_ACTIONS: Final = frozenset(vocabulary.ACCESS_ACTIONS)
COMPLAINT_ACTIONS: Final = frozenset(vocabulary.COMPLAINT_ACTIONS)
LOGISTICS_ACTIONS: Final = frozenset(vocabulary.LOGISTICS_ACTIONS)
ORDER_ACTIONS: Final = frozenset(vocabulary.ORDER_ACTIONS)

# Fields encrypted at rest by the collector (security.crypto), per event type.
# Free text a customer's data can be pasted into counts: a post quoting a mobile, an
# access log naming the customer record it opened.
SENSITIVE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "agent.message": ("text",),
    "social.mention": ("author", "text"),
    "data.access": ("resource",),
}

# --- field types (the schema) ---------------------------------------------------------

Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
Ident = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
Text = str  # free text: bounded by the event size limit, checked after decoding
Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
Seconds = Annotated[float, Meta(ge=0.0, le=MAX_SECONDS)]
if TYPE_CHECKING:
    # Validated records always hold float seconds: what the rest of the code sees.
    EventTime = float
else:
    # On the wire an RFC 3339 string is accepted too; _normalised turns it into seconds.
    EventTime = Annotated[float, Meta(ge=MIN_TS, le=MAX_TS)] | str


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


class InvalidEvent(EventError):
    def __init__(self, error: FieldError) -> None:
        super().__init__(error.error)
        self.error = error


# --- typed records ------------------------------------------------------------------------


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=True):
    """Fields every event carries. ``ts`` is float Unix seconds (event time) once validated."""

    type: ClassVar[str] = ""
    ts: EventTime
    source: Name
    id: Ident | None = None
    tenant: Name | None = None

    def to_map(self) -> dict[str, Any]:
        """The event as a contract map (``None`` fields left out)."""
        return msgspec.to_builtins(self)

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (records are frozen)."""
        return msgspec.structs.replace(self, **changes)


class QueueStats(Event, frozen=True, kw_only=True, tag="queue.stats"):
    type: ClassVar[str] = "queue.stats"
    queue: Name
    channel: Channel
    waiting: Count
    longest_wait_s: Seconds
    agents_available: Count
    agents_busy: Count
    offered: Count | None = None
    answered: Count | None = None
    abandoned: Count | None = None
    answered_in_sla: Count | None = None
    interval_s: Annotated[float, Meta(gt=0.0, le=86_400.0)] | None = None


class Contact(Event, frozen=True, kw_only=True, tag="contact"):
    type: ClassVar[str] = "contact"
    contact_id: Ident
    queue: Name
    channel: Channel
    action: ContactAction
    wait_s: Seconds | None = None
    handle_s: Seconds | None = None
    csat: Annotated[int, Meta(ge=1, le=5)] | None = None


class Health(Event, frozen=True, kw_only=True, tag="health"):
    type: ClassVar[str] = "health"
    component: Name
    status: HealthStatus
    latency_ms: Annotated[float, Meta(ge=0.0, le=3_600_000.0)] | None = None
    error_rate: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    message: Annotated[str, Meta(max_length=4096)] | None = None


class Heartbeat(Event, frozen=True, kw_only=True, tag="heartbeat"):
    type: ClassVar[str] = "heartbeat"


class SocialMention(Event, frozen=True, kw_only=True, tag="social.mention"):
    type: ClassVar[str] = "social.mention"
    platform: Name
    topic: Name
    text: Text
    author: Text | None = None
    followers: Count | None = None
    url: Annotated[str, Meta(max_length=2048)] | None = None
    sentiment: Annotated[float, Meta(ge=-1.0, le=1.0)] | None = None


class AgentMessage(Event, frozen=True, kw_only=True, tag="agent.message"):
    type: ClassVar[str] = "agent.message"
    agent_id: Name
    conversation_id: Ident
    channel: Channel
    direction: Direction
    text: Text


class DataAccess(Event, frozen=True, kw_only=True, tag="data.access"):
    type: ClassVar[str] = "data.access"
    actor: Name
    action: AccessAction
    resource: Annotated[str, Meta(min_length=1, max_length=1024)]
    records: Count
    ip: Annotated[str, Meta(max_length=64)] | None = None
    ok: bool | None = None


class Complaint(Event, frozen=True, kw_only=True, tag="complaint"):
    """A step of a complaint's handling (003 ch.5 §4: handled within 48 h, the customer
    told when it takes longer). Send one event per step, all with the same ``complaint_id``
    and ``queue`` (the team that owns it)."""

    type: ClassVar[str] = "complaint"
    complaint_id: Ident
    queue: Name
    action: ComplaintAction
    channel: Channel | None = None
    promised_ts: Annotated[float, Meta(ge=MIN_TS, le=MAX_TS)] | None = None
    """When the customer was promised an answer (Unix seconds): on ``opened`` a promise
    sooner than the 48 h, on ``customer_told`` the new time the customer was given."""
    category: Name | None = None


class LogisticsDelay(Event, frozen=True, kw_only=True, tag="logistics.delay"):
    """A delayed delivery brought to the service desk (001 §1.1: a solution within 2 h)."""

    type: ClassVar[str] = "logistics.delay"
    case_id: Ident
    queue: Name
    action: LogisticsAction
    order_id: Ident | None = None
    carrier: Name | None = None


class OrderChange(Event, frozen=True, kw_only=True, tag="order.change"):
    """A change to an order made by an agent (or by the customer through self-service when
    ``agent_id`` is absent): refunds, address changes, cancellations (001 §1.5, §8.3)."""

    type: ClassVar[str] = "order.change"
    account: Name
    """The customer's account (member id) the order belongs to; masked wherever shown."""
    action: OrderAction
    agent_id: Name | None = None
    order_id: Ident | None = None
    amount: Annotated[float, Meta(ge=0.0, le=1e12)] | None = None


AnyEvent = (
    QueueStats
    | Contact
    | Health
    | Heartbeat
    | SocialMention
    | AgentMessage
    | DataAccess
    | Complaint
    | LogisticsDelay
    | OrderChange
)
EVENT_CLASSES: Final[dict[str, type[Event]]] = {
    cls.type: cls
    for cls in (
        QueueStats,
        Contact,
        Health,
        Heartbeat,
        SocialMention,
        AgentMessage,
        DataAccess,
        Complaint,
        LogisticsDelay,
        OrderChange,
    )
}
EVENT_TYPES: Final = frozenset(EVENT_CLASSES)
_FREE_TEXT: Final[dict[str, tuple[str, ...]]] = {
    "social.mention": ("text", "author"),
    "agent.message": ("text",),
}

_MSGPACK_BATCH = msgspec.msgpack.Decoder(list[AnyEvent])
_JSON_BATCH = msgspec.json.Decoder(list[AnyEvent])
_MSGPACK_ANY = msgspec.msgpack.Decoder()
_JSON_ANY = msgspec.json.Decoder()
_ENCODER = msgspec.msgpack.Encoder()


# --- validation ---------------------------------------------------------------------------


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
    """Validate one decoded event map; raise :class:`InvalidEvent` naming field and reason."""
    if not isinstance(raw, dict):
        raise InvalidEvent(FieldError(index, "", f"event must be a map, got {_kind(raw)}"))
    etype = raw.get("type")
    if type(etype) is not str or etype not in EVENT_CLASSES:
        reason = "type is missing" if etype is None else f"unknown event type {_short(etype)}"
        raise InvalidEvent(FieldError(index, "type", reason))
    if None in raw.values():  # an explicit null is the same as an absent field
        raw = {k: v for k, v in raw.items() if v is not None}
    try:
        event = msgspec.convert(raw, EVENT_CLASSES[etype], strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(_field_error(index, str(exc), raw)) from None
    return _normalised(event, index)


def validate_batch(items: Any) -> BatchResult:
    """Validate a decoded batch. Raises :class:`BatchError` only if it is not a list."""
    if not isinstance(items, list):
        raise BatchError(f"a batch must be a list of events, got {_kind(items)}")
    _check_count(len(items))
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


def validate_body(body: bytes, fmt: Literal["json", "msgpack"]) -> BatchResult:
    """Decode and validate a request body; :class:`BatchError` if nothing could be read."""
    _check_body_size(body)
    fast = _MSGPACK_BATCH if fmt == "msgpack" else _JSON_BATCH
    try:
        events = fast.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, ValueError):
        pass  # some event is bad (or the body is): the careful path names each one
    else:
        _check_count(len(events))
        return _normalise_all(events)
    items = decode_msgpack_body(body) if fmt == "msgpack" else decode_json_body(body)
    return validate_batch(items)


def _normalise_all(events: Sequence[Event]) -> BatchResult:
    result = BatchResult([], [])
    for index, event in enumerate(events):
        try:
            result.events.append(_normalised(event, index))
            result.indexes.append(index)
        except InvalidEvent as exc:
            result.errors.append(exc.error)
    return result


def _normalised(event: Event, index: int) -> Event:
    """What the schema cannot say: RFC 3339 times and the per-event size limit."""
    if isinstance(event.ts, str):
        try:
            event = msgspec.structs.replace(event, ts=parse_ts(event.ts))
        except ValueError as exc:
            raise InvalidEvent(FieldError(index, "ts", f"ts {exc}")) from None
    names = _FREE_TEXT.get(event.type)
    if (
        names
        and _text_size(event, names) > MAX_EVENT_BYTES - 1024
        and len(_ENCODER.encode(event)) > MAX_EVENT_BYTES
    ):
        raise InvalidEvent(FieldError(index, "", f"event larger than {MAX_EVENT_BYTES} bytes"))
    return event


def _text_size(event: Event, names: tuple[str, ...]) -> int:
    size = 0
    for name in names:
        value = getattr(event, name)
        if value is not None:
            size += len(value) if value.isascii() else 3 * len(value)
    return size


def _check_count(n: int) -> None:
    if n > MAX_BATCH_EVENTS:
        raise BatchError(f"a batch holds at most {MAX_BATCH_EVENTS} events, got {n}", status=413)


def parse_ts(value: Any) -> float:
    """Normalise an event time (Unix seconds or RFC 3339 string) to float seconds.

    Raises ``ValueError`` with the reason.
    """
    if type(value) is str:
        ts = _parse_rfc3339(value)
    elif type(value) in (int, float):
        ts = float(value)
    else:
        raise ValueError(f"must be Unix seconds or an RFC 3339 string, got {_kind(value)}")
    if not math.isfinite(ts) or ts < MIN_TS or ts > MAX_TS:
        raise ValueError(f"must lie between 2000-01-01 and 2100-01-01, got {_short(value)}")
    return ts


def _parse_rfc3339(text: str) -> float:
    # RFC 3339 needs a full date, a time and an offset; fromisoformat alone would
    # also take a bare date or a naive time.
    if len(text) > 40 or len(text) < 19 or text[10] not in "Tt ":
        raise ValueError(f"is not an RFC 3339 date-time: {_short(text)}")
    try:
        moment = datetime.fromisoformat(text.upper().replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"is not an RFC 3339 date-time: {_short(text)}") from None
    if moment.tzinfo is None:
        raise ValueError(f"has no UTC offset: {_short(text)}")
    return moment.timestamp()


# msgspec says e.g. "Expected `int` >= 0, got `str` - at `$.waiting`" or
# "Object missing required field `queue`": turn that into (field, reason).
_AT = re.compile(r" - at `\$((?:\.[^`\[.]+|\[\d+\])*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def _field_error(index: int, message: str, raw: Mapping[str, Any]) -> FieldError:
    match = _AT.search(message)
    path = match.group(1) if match else ""
    reason = message[: match.start()] if match else message
    name = path.split(".")[1].split("[")[0] if path.count(".") else ""
    missing = _MISSING.search(reason)
    if missing:
        name = missing.group(1)
        return FieldError(index, name, f"{name} is required")
    value = raw.get(name)
    if type(value) is float and not math.isfinite(value):
        return FieldError(index, name, f"{name} must be a finite number")
    if name == "ts" and "`float` " in reason:
        return FieldError(
            index, name, f"ts must lie between 2000-01-01 and 2100-01-01, got {_short(value)}"
        )
    return FieldError(index, name, f"{name} {_plain(reason, value)}")


_TYPE_WORDS: Final = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "str | null": "a string",
    "int | null": "an integer",
    "float | null": "a number",
    "bool | null": "true or false",
    "float | str": "Unix seconds or an RFC 3339 string",
}
_EXPECTED = re.compile(r"Expected `([^`]+)`(?:, got `([^`]+)`)?(.*)")


def _plain(reason: str, value: Any) -> str:
    """msgspec's wording in plain words: ``must be an integer, got string``."""
    match = _EXPECTED.match(reason)
    if match is None:
        if reason.startswith("Invalid enum value"):
            return f"is not one of the allowed values, got {_short(value)}"
        return reason
    expected, got, rest = match.groups()
    rest = rest.strip()
    if rest.startswith("of length >= 1"):
        return "must not be empty"
    if rest.startswith("of length <="):
        return f"is longer than {rest.rsplit(' ', 1)[-1]} characters"
    words = _TYPE_WORDS.get(expected, expected)
    if got:
        return f"must be {words}, got {_kind(value)}"
    return f"must be {rest}, got {_short(value)}" if rest else f"must be {words}"


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


# --- body decoding (producer side) ------------------------------------------------------


def decode_json_body(body: bytes) -> Any:
    """Decode a JSON request body, with a clear :class:`BatchError` on any failure."""
    _check_body_size(body)
    try:
        return _JSON_ANY.decode(body)
    except (msgspec.DecodeError, RecursionError, ValueError):
        pass
    try:  # the standard library also reads NaN / Infinity, which we then name per field
        return json.loads(body)
    except RecursionError:
        raise BatchError("JSON nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchError(f"body is not valid JSON: {exc}") from None


def decode_msgpack_body(body: bytes) -> Any:
    """Decode a msgpack request body, with a clear :class:`BatchError` on any failure."""
    _check_body_size(body)
    try:
        return _MSGPACK_ANY.decode(body)
    except RecursionError:
        raise BatchError("body is not valid msgpack: nested too deeply") from None
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: bad UTF-8 in a string
        reason = "extra data after the batch" if "trailing" in str(exc).lower() else str(exc)
        raise BatchError(f"body is not valid msgpack: {reason}") from None


def _check_body_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise BatchError(f"body larger than {MAX_BODY_BYTES} bytes", status=413)
    if not body:
        raise BatchError("body is empty")


# --- bus codec ------------------------------------------------------------------------------


def event_from_map(data: Mapping[str, Any]) -> Event:
    """Rebuild a record from a map written by :func:`encode_batch` (trusted input)."""
    return msgspec.convert(data, AnyEvent)  # type: ignore[arg-type]


def encode_batch(events: Iterable[Event]) -> bytes:
    """msgpack bytes of a list of events, as one entry of the events stream carries them."""
    return _ENCODER.encode(events if isinstance(events, list) else list(events))


def decode_batch(data: bytes) -> list[Event]:
    """Inverse of :func:`encode_batch`."""
    return list(_MSGPACK_BATCH.decode(data))


def events_to_json(events: Iterable[Event]) -> str:
    """JSON Lines of events (used by the simulator's file output and replay)."""
    return "".join(json.dumps(e.to_map(), ensure_ascii=False) + "\n" for e in events)
