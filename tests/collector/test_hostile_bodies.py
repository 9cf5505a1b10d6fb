"""Property tests of the decoding path: any bytes in, never a 500, never a hang.

Each example is a real HTTP request to a real collector app (one per test, so
hypothesis' examples share it); what comes back must be 202 with every
rejection naming an index and a field, or a 4xx with an ``error``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import aiohttp
import msgpack
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.collector.conftest import Running

CONTENT_TYPES = ["application/json", "application/msgpack", "text/plain", ""]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=5),
    max_leaves=30,
)  # fmt: skip
event_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["contact", "queue.stats", "heartbeat", "health", "x", 3])},
    optional={
        "ts": st.one_of(st.floats(), st.integers(), st.text(max_size=30)),
        "source": st.one_of(st.text(max_size=300), st.integers()),
        "queue": json_values, "channel": st.sampled_from(["chat", "fax", 1]),
        "waiting": st.one_of(st.integers(), st.floats()), "id": json_values,
    },
)  # fmt: skip
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def post(running: Running, body: bytes, content_type: str, gz: bool) -> tuple[int, Any]:
    headers = {**running.headers, "Content-Type": content_type}
    if gz:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    async with aiohttp.ClientSession() as session:
        request = session.post(f"{running.url}/v1/events", data=body, headers=headers)
        async with request as resp:
            return resp.status, await resp.json(content_type=None)


def check_answer(status: int, answer: Any, batch_len: int | None = None) -> None:
    assert status in (202, 400, 413, 415), (status, answer)
    if status != 202:
        assert isinstance(answer["error"], str) and answer["error"]
        return
    for rejection in answer["rejected"]:
        assert isinstance(rejection["index"], int) and isinstance(rejection["field"], str)
        assert rejection["error"]
        if batch_len is not None:
            assert 0 <= rejection["index"] < batch_len
    if batch_len is not None:
        assert answer["accepted"] + len(answer["rejected"]) + answer["duplicates"] == batch_len


@SETTINGS
@given(body=st.binary(max_size=2000), content_type=st.sampled_from(CONTENT_TYPES),
       gz=st.booleans())  # fmt: skip
async def test_any_bytes_get_a_4xx_or_a_202_and_never_hang(
    collector: Running, body: bytes, content_type: str, gz: bool
) -> None:
    status, answer = await asyncio.wait_for(post(collector, body, content_type, gz), 5)
    check_answer(status, answer)


@SETTINGS
@given(batch=st.lists(event_like | json_values, max_size=20), as_msgpack=st.booleans())
async def test_any_list_of_values_names_every_rejection(
    collector: Running, batch: list[Any], as_msgpack: bool
) -> None:
    if as_msgpack:
        try:
            body, content_type = msgpack.packb(batch), "application/msgpack"
        except OverflowError:  # msgpack has no integers beyond 64 bits; JSON does
            assume(False)
    else:
        body, content_type = json.dumps(batch).encode(), "application/json"
    status, answer = await asyncio.wait_for(post(collector, body, content_type, False), 5)
    assert status == 202, answer
    check_answer(status, answer, len(batch))
