"""``/v1/live``: snapshot then changes, resume, pings, revocation, and slow clients."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
from typing import Any

import aiohttp
import pytest

from tests.api.test_api_support import ApiStack, api_fixture
from watchfloor.core import keys
from watchfloor.core.changes import add_change

api = api_fixture(live_ping_s=0.3, live_queue=200)


async def connect(api: ApiStack, role: str = "viewer", query: str = "") -> Any:
    return await api.session.ws_connect(api.url + "/v1/live" + query, headers=api.headers(role))


async def next_of(ws: Any, *types: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of one of ``types`` (pings are skipped unless asked for)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if data["type"] in types:
            return data


def seq(text: str) -> tuple[int, int]:
    ms, _, n = text.partition("-")
    return int(ms), int(n)


async def test_a_client_gets_a_snapshot_then_the_change_an_ack_makes(api):
    incident = await api.fire()
    ws = await connect(api)
    snapshot = await next_of(ws, "snapshot")
    assert snapshot["reason"] == "initial"
    assert [i["id"] for i in snapshot["incidents"]] == [incident.id]
    assert set(snapshot) >= {"queues", "health", "runs", "flags", "engine", "seq"}

    await api.call("POST", f"/v1/incidents/{incident.id}/ack", "duty_manager")
    change = await next_of(ws, "change")
    assert (change["kind"], change["op"], change["data"]["state"]) == (
        "incident", "acknowledged", "acknowledged")  # fmt: skip
    assert seq(change["seq"]) > seq(snapshot["seq"])
    await ws.close()


async def test_a_reconnecting_client_resumes_after_the_last_change_it_saw(api):
    incident = await api.fire()
    ws = await connect(api)
    last = (await next_of(ws, "snapshot"))["seq"]
    await ws.close()
    await api.call("POST", f"/v1/incidents/{incident.id}/ack", "duty_manager")
    await api.call("POST", f"/v1/incidents/{incident.id}/note", "duty_manager",
                   body={"note": "n"})  # fmt: skip

    ws = await connect(api, query=f"?after={last}")
    assert await next_of(ws, "resume", "snapshot") == {"type": "resume", "seq": last}
    ops = [(await next_of(ws, "change"))["op"] for _ in range(2)]
    assert ops == ["acknowledged", "note"]
    await ws.close()


@pytest.mark.parametrize("after", ["1-0", "99999999999999-0"])
async def test_a_position_no_longer_or_not_yet_in_the_stream_gets_a_snapshot(api, after):
    await api.fire()
    await api.redis.xtrim(keys.CHANGES, maxlen=0)
    await api.fire("other")
    ws = await connect(api, query=f"?after={after}")
    message = await next_of(ws, "resume", "snapshot")
    assert (message["type"], len(message["incidents"])) == ("snapshot", 2)
    await ws.close()


async def test_pings_carry_the_last_sequence_number(api):
    ws = await connect(api)
    snapshot = await next_of(ws, "snapshot")
    ping = await next_of(ws, "ping", timeout=3)
    assert ping["seq"] == snapshot["seq"] and ping["at"] > 0
    await ws.close()


async def test_a_client_may_ask_for_a_fresh_snapshot(api):
    ws = await connect(api)
    await next_of(ws, "snapshot")
    await ws.send_str(json.dumps({"type": "resync"}))
    assert (await next_of(ws, "snapshot"))["reason"] == "resync"
    await ws.send_str(json.dumps({"type": "ack", "incident": "x"}))
    assert "REST" in (await next_of(ws, "error"))["error"]
    await ws.close()


async def test_a_revoked_token_closes_the_socket_within_a_ping(api):
    ws = await connect(api)
    await next_of(ws, "snapshot")
    await api.token_store.revoke("t-viewer")
    deadline = time.monotonic() + 5
    while not ws.closed and time.monotonic() < deadline:
        await ws.receive(timeout=5)
    assert ws.closed and ws.close_code == 4401


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wf_wrong"}])
async def test_no_upgrade_without_a_good_token(api, headers):
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await api.session.ws_connect(api.url + "/v1/live", headers=headers)
    assert caught.value.status == 401


async def test_queue_changes_carry_their_freshness(api):
    ws = await connect(api)
    await next_of(ws, "snapshot")
    row = {"queue": "chat-vip", "channel": "chat", "waiting": 3, "updated_at": time.time() - 1}
    async with api.redis.pipeline(transaction=True) as pipe:
        add_change(pipe, "queue", "updated", row)
        await pipe.execute()
    change = await next_of(ws, "change")
    assert change["kind"] == "queue" and change["data"]["stale"] is False
    assert 0.5 < change["data"]["age_s"] < 5
    await ws.close()


class RawStalledClient:
    """A WebSocket client that completes the handshake and then stops reading.

    A tiny receive buffer makes the server's socket fill up quickly, as with a
    console on a frozen terminal or a saturated link.
    """

    def __init__(self, url: str, token: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.token = token
        self.buffer = b""

    def connect(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /v1/live HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {self.token}\r\n\r\n".encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _need(self, n: int) -> None:
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            assert chunk, "server closed the connection"
            self.buffer += chunk

    def frame(self) -> tuple[int, bytes]:
        self._need(2)
        opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
        start = 2
        if length == 126:
            self._need(4)
            length, start = struct.unpack(">H", self.buffer[2:4])[0], 4
        elif length == 127:
            self._need(10)
            length, start = struct.unpack(">Q", self.buffer[2:10])[0], 10
        self._need(start + length)
        payload = self.buffer[start : start + length]
        self.buffer = self.buffer[start + length :]
        return opcode, payload

    def read_until_snapshot(self, reason: str, timeout: float) -> int:
        """Read frames until a snapshot with ``reason``; returns the changes read before it."""
        self.sock.settimeout(timeout)
        changes = 0
        while True:
            opcode, payload = self.frame()
            if opcode != 1:
                continue
            message = json.loads(payload)
            if message["type"] == "snapshot" and message["reason"] == reason:
                return changes
            changes += message["type"] == "change"


async def burst(api: ApiStack, count: int, size: int) -> None:
    padding = "x" * size
    for start in range(0, count, 100):
        async with api.redis.pipeline(transaction=False) as pipe:
            for n in range(start, min(start + 100, count)):
                add_change(pipe, "queue", "updated", {"queue": f"q{n}", "pad": padding})
            await pipe.execute()


async def test_a_stalled_client_is_resynchronised_while_another_keeps_receiving(api):
    stalled = RawStalledClient(api.url, api.tokens["viewer"])
    await asyncio.to_thread(stalled.connect)
    healthy = await connect(api)
    await next_of(healthy, "snapshot")
    count = 2000

    async def receive_all() -> list[str]:
        queues = []
        while len(queues) < count:
            message = await next_of(healthy, "change", "snapshot", timeout=20)
            assert message["type"] == "change", "the healthy client was resynchronised"
            queues.append(message["data"]["queue"])
        return queues

    reader = asyncio.create_task(receive_all())
    await burst(api, count, 8000)
    assert await reader == [f"q{n}" for n in range(count)]

    _, metrics = await api.call("GET", "/metrics", None)
    assert "watchfloor_api_live_resyncs_total 1" in metrics
    assert "watchfloor_api_live_clients 2" in metrics
    before = await asyncio.to_thread(stalled.read_until_snapshot, "initial", 10)
    assert before == 0
    buffered = await asyncio.to_thread(stalled.read_until_snapshot, "resync", 10)
    assert buffered < count  # what the sockets held, then a fresh snapshot: not all 2000
    stalled.sock.close()
    await healthy.close()


async def test_a_role_without_read_board_is_refused_before_the_upgrade(api):
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await connect(api, role="producer")
    assert caught.value.status == 403


async def test_an_oversized_client_message_closes_only_that_socket(api):
    hostile, other = await connect(api), await connect(api, role="oncall")
    await next_of(hostile, "snapshot")
    await next_of(other, "snapshot")
    await hostile.send_str("x" * 100_000)
    closing = await hostile.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    incident = await api.fire()
    assert (await next_of(other, "change"))["data"]["id"] == incident.id
    await other.close()


async def test_the_hub_stops_between_two_reads_never_cancelled_inside_one(api):
    """A hub cancelled inside its blocking XREAD could leave redis-py's clean-up waiting
    forever, and the monitor never finished stopping: it ends on its stop event instead."""
    from watchfloor.api.counters import ApiMetrics
    from watchfloor.api.hub import BLOCK_MS, LiveHub

    hub = LiveHub(api.redis, ApiMetrics(), stale_after_s=30.0, live_queue=200)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    await asyncio.sleep(0.3)  # inside its blocking read of the changes stream
    assert not task.done()
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(asyncio.shield(task), BLOCK_MS / 1000 + 2.0)
    assert not task.cancelled()
    assert time.monotonic() - started <= BLOCK_MS / 1000 + 1.0
    # the client it read with is still usable: nothing was torn down mid-command
    assert await api.redis.ping()
