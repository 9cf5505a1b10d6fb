"""The event contract v1: every kind of bad input is named precisely, good events survive."""

from __future__ import annotations

import gzip
import json
import math

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchfloor.core.events import (
    MAX_BATCH_EVENTS,
    MAX_BODY_BYTES,
    AgentMessage,
    BatchError,
    Contact,
    DataAccess,
    Health,
    Heartbeat,
    QueueStats,
    SocialMention,
    decode_batch,
    decode_json_body,
    decode_msgpack_body,
    encode_batch,
    validate_batch,
    validate_body,
    validate_event,
)

TS = 1_763_800_000.0


def queue_stats(**over: object) -> dict[str, object]:
    event: dict[str, object] = {
        "type": "queue.stats",
        "ts": TS,
        "source": "acd-1",
        "queue": "presale-chat",
        "channel": "chat",
        "waiting": 12,
        "longest_wait_s": 31.5,
        "agents_available": 2,
        "agents_busy": 18,
    }
    event.update(over)
    return event


GOOD_EVENTS = [
    queue_stats(offered=40, answered=38, abandoned=2, answered_in_sla=30, interval_s=10),
    {
        "type": "contact",
        "ts": TS,
        "source": "acd-1",
        "contact_id": "c1",
        "queue": "hotline",
        "channel": "phone",
        "action": "answered",
        "wait_s": 4.0,
        "handle_s": 120,
        "csat": 5,
    },
    {
        "type": "health",
        "ts": TS,
        "source": "probe",
        "component": "order-api",
        "status": "down",
        "latency_ms": 3000,
        "error_rate": 1.0,
        "message": "timeout",
    },
    {"type": "heartbeat", "ts": TS, "source": "chat-gateway"},
    {
        "type": "social.mention",
        "ts": TS,
        "source": "weibo-feed",
        "platform": "weibo",
        "topic": "brand",
        "text": "客服太慢了，投诉！",
        "author": "u1",
        "followers": 120000,
        "sentiment": -0.8,
    },
    {
        "type": "agent.message",
        "ts": TS,
        "source": "chat",
        "agent_id": "a7",
        "conversation_id": "conv-1",
        "channel": "chat",
        "direction": "to_customer",
        "text": "您好，请问有什么可以帮您？",
    },
    {
        "type": "data.access",
        "ts": TS,
        "source": "crm",
        "actor": "agent-7",
        "action": "export",
        "resource": "customers",
        "records": 5000,
        "ip": "127.0.0.1",
        "ok": True,
    },
]


@pytest.mark.parametrize("raw", GOOD_EVENTS, ids=lambda e: str(e["type"]))
def test_every_event_type_is_accepted_and_typed(raw: dict[str, object]) -> None:
    event = validate_event(raw)
    assert event.type == raw["type"]
    assert event.to_map() == raw


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        # not a map / bad type
        (42, "", "must be a map"),
        ([1, 2], "", "must be a map"),
        ("queue.stats", "", "must be a map"),
        ({"ts": TS, "source": "s"}, "type", "is missing"),
        ({"type": "queue.nope", "ts": TS, "source": "s"}, "type", "unknown event type"),
        ({"type": 7, "ts": TS, "source": "s"}, "type", "unknown event type"),
        # common fields
        (queue_stats(ts=None), "ts", "is required"),
        (queue_stats(source=""), "source", "must not be empty"),
        (queue_stats(source=12), "source", "must be a string"),
        (queue_stats(source="x" * 300), "source", "longer than 256 characters"),
        (queue_stats(id=5), "id", "must be a string"),
        # times
        (queue_stats(ts="yesterday"), "ts", "not an RFC 3339"),
        (queue_stats(ts="2025-11-11"), "ts", "not an RFC 3339"),
        (queue_stats(ts="2025-11-11T10:00:00"), "ts", "no UTC offset"),
        (queue_stats(ts="2025-13-11T10:00:00Z"), "ts", "not an RFC 3339"),
        (queue_stats(ts=math.nan), "ts", "finite"),
        (queue_stats(ts=math.inf), "ts", "finite"),
        (queue_stats(ts=-5), "ts", "between 2000-01-01 and 2100-01-01, got -5"),
        (queue_stats(ts=10**20), "ts", "between 2000-01-01"),
        (queue_stats(ts=True), "ts", "Unix seconds or an RFC 3339"),
        # wrong types, out of range
        (queue_stats(waiting="12"), "waiting", "must be an integer"),
        (queue_stats(waiting=1.5), "waiting", "must be an integer"),
        (queue_stats(waiting=True), "waiting", "must be an integer"),
        (queue_stats(waiting=-1), "waiting", "must be >= 0, got -1"),
        (queue_stats(waiting=10**12), "waiting", "must be <= 1000000000"),
        (queue_stats(longest_wait_s=math.nan), "longest_wait_s", "finite"),
        (queue_stats(longest_wait_s=-math.inf), "longest_wait_s", "finite"),
        (queue_stats(longest_wait_s=-3.0), "longest_wait_s", "must be >= 0.0, got -3.0"),
        (queue_stats(longest_wait_s=[1]), "longest_wait_s", "must be a number"),
        (queue_stats(channel="fax"), "channel", "not one of the allowed values, got 'fax'"),
        (queue_stats(interval_s=0), "interval_s", "must be > 0.0"),
        (queue_stats(agents_busy=None), "agents_busy", "is required"),
        ({**GOOD_EVENTS[1], "action": "hung_up"}, "action", "not one of the allowed values"),
        ({**GOOD_EVENTS[1], "csat": 6}, "csat", "must be <= 5, got 6"),
        ({**GOOD_EVENTS[2], "status": "sideways"}, "status", "not one of the allowed values"),
        ({**GOOD_EVENTS[2], "error_rate": 1.5}, "error_rate", "must be <= 1.0, got 1.5"),
        ({**GOOD_EVENTS[4], "sentiment": -2}, "sentiment", "must be >= -1.0, got -2"),
        ({**GOOD_EVENTS[4], "followers": -1}, "followers", "must be >= 0"),
        ({**GOOD_EVENTS[5], "direction": "outbound"}, "direction", "not one of the allowed"),
        ({**GOOD_EVENTS[5], "text": {"nested": "map"}}, "text", "must be a string"),
        ({**GOOD_EVENTS[6], "records": "many"}, "records", "must be an integer"),
        ({**GOOD_EVENTS[6], "ok": "yes"}, "ok", "true or false"),
        ({**GOOD_EVENTS[6], "action": "steal"}, "action", "not one of the allowed"),
        # size
        ({**GOOD_EVENTS[5], "text": "x" * 70_000}, "", "larger than"),
        ({**GOOD_EVENTS[5], "text": "客" * 25_000}, "", "larger than"),
        ({**GOOD_EVENTS[4], "author": "x" * 66_000}, "", "larger than"),
    ],
)
def test_bad_event_is_named_by_field_and_reason(raw: object, field: str, reason: str) -> None:
    result = validate_batch([GOOD_EVENTS[3], raw, GOOD_EVENTS[0]])
    assert [type(e) for e in result.events] == [Heartbeat, QueueStats]
    assert result.indexes == [0, 2]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.index == 1
    assert error.field == field
    assert reason in error.error


def test_rfc3339_times_are_normalised_to_unix_seconds() -> None:
    a = validate_event(queue_stats(ts="2025-11-11T00:00:00+08:00"))
    b = validate_event(queue_stats(ts="2025-11-10T16:00:00Z"))
    c = validate_event(queue_stats(ts="2025-11-10t16:00:00.250z"))
    assert a.ts == b.ts == 1_762_790_400.0
    assert c.ts == 1_762_790_400.25


def test_unknown_extra_fields_are_ignored_not_rejected() -> None:
    event = validate_event(queue_stats(site="hz", vendor={"x": 1}, junk=["x" * 1000] * 80))
    assert isinstance(event, QueueStats)
    assert "site" not in event.to_map()


def test_a_batch_that_is_not_a_list_is_refused_whole() -> None:
    for body in ({"type": "heartbeat"}, "events", 7, None):
        with pytest.raises(BatchError, match="must be a list"):
            validate_batch(body)


def test_a_batch_over_the_event_limit_is_413() -> None:
    with pytest.raises(BatchError) as info:
        validate_batch([GOOD_EVENTS[3]] * (MAX_BATCH_EVENTS + 1))
    assert info.value.status == 413


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b'[{"type": "\xc3"}]', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"x" * (MAX_BODY_BYTES + 1), "larger than"),
    ],
)
def test_bad_json_bodies_raise_a_clear_batch_error(body: bytes, reason: str) -> None:
    with pytest.raises(BatchError, match=reason):
        decode_json_body(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb([1, 2])[:-1], "not valid msgpack"),
        (msgpack.packb([1]) + b"\x01", "extra data"),
        (b"\x91" * 5000 + b"\x90", "not valid msgpack"),
        (gzip.compress(b"[]"), "not valid msgpack"),
        (b"\x91\xa2\x80\x81", "not valid msgpack"),  # a string that is not UTF-8
    ],
)
def test_bad_msgpack_bodies_raise_a_clear_batch_error(body: bytes, reason: str) -> None:
    with pytest.raises(BatchError, match=reason):
        decode_msgpack_body(body)


def test_json_and_msgpack_carry_the_same_maps() -> None:
    from_json = validate_batch(decode_json_body(json.dumps(GOOD_EVENTS).encode()))
    from_msgpack = validate_batch(decode_msgpack_body(msgpack.packb(GOOD_EVENTS)))
    assert from_json.events == from_msgpack.events
    assert not from_json.errors


# --- hypothesis: the bus codec round-trips every valid event ---------------------------

names = st.text(min_size=1, max_size=20)
counts = st.integers(min_value=0, max_value=10**6)
seconds = st.floats(min_value=0, max_value=10**6, allow_nan=False)
times = st.floats(min_value=1e9, max_value=4e9, allow_nan=False)
channels = st.sampled_from(["phone", "chat", "email", "social", "ticket"])
common = {"ts": times, "source": names, "id": st.none() | names, "tenant": st.none() | names}

valid_events = st.one_of(
    st.builds(
        QueueStats,
        queue=names,
        channel=channels,
        waiting=counts,
        longest_wait_s=seconds,
        agents_available=counts,
        agents_busy=counts,
        offered=st.none() | counts,
        interval_s=st.none() | st.floats(min_value=0.1, max_value=600),
        **common,
    ),
    st.builds(
        Contact,
        contact_id=names,
        queue=names,
        channel=channels,
        action=st.sampled_from(["offered", "answered", "abandoned", "completed"]),
        wait_s=st.none() | seconds,
        csat=st.none() | st.integers(1, 5),
        **common,
    ),
    st.builds(
        Health,
        component=names,
        status=st.sampled_from(["up", "degraded", "down"]),
        error_rate=st.none() | st.floats(0, 1),
        message=st.none() | st.text(),
        **common,
    ),
    st.builds(Heartbeat, **common),
    st.builds(
        SocialMention,
        platform=names,
        topic=names,
        text=st.text(max_size=200),
        followers=st.none() | counts,
        sentiment=st.none() | st.floats(-1, 1),
        **common,
    ),
    st.builds(
        AgentMessage,
        agent_id=names,
        conversation_id=names,
        channel=channels,
        direction=st.sampled_from(["to_customer", "from_customer", "internal"]),
        text=st.text(max_size=200),
        **common,
    ),
    st.builds(
        DataAccess,
        actor=names,
        action=st.sampled_from(["view", "export"]),
        resource=names,
        records=counts,
        ok=st.none() | st.booleans(),
        **common,
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_events, min_size=1, max_size=20))
def test_the_bus_codec_round_trips_every_valid_event(events: list) -> None:
    assert decode_batch(encode_batch(events)) == events
    # and what producers send (the contract maps) validates back to the same records
    again = validate_batch(msgpack.unpackb(msgpack.packb([e.to_map() for e in events])))
    assert again.errors == []
    assert again.events == events


@settings(max_examples=300)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: (
            st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
        ),
        max_leaves=30,
    )
)
def test_any_decoded_value_gives_a_result_or_a_batch_error(value: object) -> None:
    try:
        result = validate_batch(value)
    except BatchError:
        assert not isinstance(value, list)
        return
    assert len(result.events) + len(result.errors) == len(value)  # type: ignore[arg-type]
    assert all(e.index < len(value) for e in result.errors)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_the_fast_body_path_agrees_with_the_careful_path(fmt: str) -> None:
    items = [
        *GOOD_EVENTS,
        queue_stats(ts="2025-11-11T00:00:00+08:00"),
        queue_stats(waiting=-1),
        {"type": "heartbeat"},
        7,
    ]
    for batch in (GOOD_EVENTS, items):
        body = json.dumps(batch).encode() if fmt == "json" else msgpack.packb(batch)
        fast = validate_body(body, fmt)  # type: ignore[arg-type]
        careful = validate_batch(json.loads(json.dumps(batch)))
        assert fast.events == careful.events
        assert fast.indexes == careful.indexes
        assert fast.errors == careful.errors
    assert all(type(e.ts) is float for e in fast.events)


@settings(max_examples=200)
@given(st.lists(valid_events, max_size=10), st.lists(st.integers(0, 9), max_size=3))
def test_fast_and_careful_paths_agree_on_mixed_batches(events: list, broken: list[int]) -> None:
    maps = [e.to_map() for e in events]
    for i in broken:
        if i < len(maps):
            maps[i] = {**maps[i], "ts": "not a time"}
    body = msgpack.packb(maps)
    fast, careful = validate_body(body, "msgpack"), validate_batch(msgpack.unpackb(body))
    assert (fast.events, fast.indexes, fast.errors) == (
        careful.events,
        careful.indexes,
        careful.errors,
    )
