"""An async producer client for the collector: batching, retries, signing, HTTP or WebSocket.

Events (contract maps or ``core.events`` records) are buffered and sent as one
batch when ``batch_size`` events are waiting or ``linger_s`` seconds after the
first one, whichever comes first. A batch is retried with exponential backoff
and jitter on connection errors, 429 and 5xx (``Retry-After`` honoured) until
``retry_for_s`` has passed; a 4xx that retrying cannot fix raises
:class:`~collector.errors.ProducerError`. Retries are at least once: give
events an ``id`` and the collector drops the copies.

Over HTTP each batch is a ``POST /v1/events`` (msgpack or JSON, optionally
gzip, optionally signed with ``X-Watchfloor-Signature``). Over the WebSocket
(``transport="ws"``) batches are pipelined up to ``max_in_flight``; the
answers carry sequence numbers, and after a reconnect the unanswered batches
are sent again in order.

    async with ProducerClient("http://127.0.0.1:8470", token) as client:
        await client.send({"type": "heartbeat", "ts": time.time(), "source": "acd-1"})
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgpack

from watchfloor.collector.errors import ProducerError
from watchfloor.core.events import Event

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(slots=True)
class ClientStats:
    """What the collector said about everything sent so far."""

    batches: int = 0
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    latencies: list[float] = field(default_factory=list)
    """Seconds from first send to answer, per batch."""

    def add(self, result: Mapping[str, Any], latency: float) -> None:
        self.batches += 1
        self.accepted += int(result.get("accepted", 0))
        self.duplicates += int(result.get("duplicates", 0))
        self.rejected.extend(result.get("rejected", ()))
        self.latencies.append(latency)


class ProducerClient:
    """Sends events to a collector. Use as an async context manager."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        transport: str = "http",
        encoding: str = "msgpack",
        batch_size: int = 1000,
        linger_s: float = 0.2,
        compress: bool = False,
        signing_secret: str | None = None,
        retry_for_s: float = 60.0,
        max_backoff_s: float = 2.0,
        max_in_flight: int = 4,
        timeout_s: float = 30.0,
    ) -> None:
        if transport not in ("http", "ws") or encoding not in ("msgpack", "json"):
            raise ValueError("transport is http or ws; encoding is msgpack or json")
        self.url = url.rstrip("/")
        self.token = token
        self.transport = transport
        self.encoding = encoding
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.compress = compress
        self.signing_secret = signing_secret
        self.retry_for_s = retry_for_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.stats = ClientStats()
        self._buffer: list[Mapping[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._slots = asyncio.Semaphore(max_in_flight if transport == "ws" else 1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: _WsChannel | None = None

    async def __aenter__(self) -> ProducerClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            headers={"Authorization": f"Bearer {self.token}"} if self.token else None,
        )
        if self.transport == "ws":
            self._ws = _WsChannel(self)

    async def close(self) -> None:
        """Send what is buffered, wait for every answer, close the connection."""
        try:
            await self.flush()
            await self.drain()
        finally:
            if self._ws is not None:
                await self._ws.close()
            if self._session is not None:
                await self._session.close()

    # --- buffering -----------------------------------------------------------------------

    async def send(self, event: Mapping[str, Any] | Event) -> None:
        """Buffer one event; sends a batch when it is full."""
        self._buffer.append(event.to_map() if isinstance(event, Event) else event)
        if len(self._buffer) >= self.batch_size:
            await self.flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.linger_s, self._linger_expired)

    async def send_many(self, events: Iterable[Mapping[str, Any] | Event]) -> None:
        for event in events:
            await self.send(event)

    def _linger_expired(self) -> None:
        self._timer = None
        if self._buffer:
            self._spawn(self.flush())

    async def flush(self) -> None:
        """Send the buffered events as one batch (returns once the batch is in flight)."""
        self._raise_failure()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        await self._slots.acquire()
        self._spawn(self._deliver(batch))

    async def drain(self) -> None:
        """Wait until every batch sent so far is answered; raise the first failure."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._raise_failure()

    async def send_batch(self, events: list[Mapping[str, Any] | Event]) -> dict[str, Any]:
        """Send one batch now and return the collector's answer (no buffering)."""
        maps = [e.to_map() if isinstance(e, Event) else e for e in events]
        async with self._slots:
            return await self._send_with_retries(maps)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    async def _deliver(self, batch: list[Mapping[str, Any]]) -> None:
        try:
            await self._send_with_retries(batch)
        except Exception as exc:  # kept for the next flush()/drain() to raise
            self._failure = self._failure or exc
        finally:
            self._slots.release()

    # --- sending ---------------------------------------------------------------------------

    async def _send_with_retries(self, batch: list[Mapping[str, Any]]) -> dict[str, Any]:
        body, headers = self.encode(batch)
        started = time.monotonic()
        delay = 0.05
        while True:
            try:
                result = await self._send_once(body, headers)
            except _Retry as exc:
                wait = exc.retry_after if exc.retry_after is not None else delay
                if time.monotonic() + wait - started > self.retry_for_s:
                    raise ProducerError(f"batch not delivered: {exc}") from None
                self.stats.retries += 1
                logger.info("batch not delivered, retrying in %.2fs error=%s", wait, exc)
                await asyncio.sleep(wait * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.stats.sent += len(batch)
            self.stats.add(result, time.monotonic() - started)
            return result

    def encode(self, batch: list[Mapping[str, Any]]) -> tuple[bytes, dict[str, str]]:
        """The request body and headers of one batch."""
        if self.encoding == "msgpack":
            body = msgpack.packb(batch, use_bin_type=True)
            headers = {"Content-Type": "application/msgpack"}
        else:
            body = json.dumps(batch, ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json"}
        if self.signing_secret:  # over the body before compression (see collector.app)
            from watchfloor.security.signing import HEADER, sign

            headers[HEADER] = sign(body, self.signing_secret)
        if self.compress and self.transport == "http":
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    async def _send_once(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        if self._ws is not None:
            return await self._ws.send(body, text=self.encoding == "json")
        assert self._session is not None, "client not started"
        try:
            async with self._session.post(
                f"{self.url}/v1/events", data=body, headers=headers
            ) as resp:
                payload = await _json_or_text(resp)
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Retry(f"connection failed: {exc or type(exc).__name__}") from None
        return _check_answer(status, payload, retry_after)


def _check_answer(status: int, payload: Any, retry_after: str | None) -> dict[str, Any]:
    if status == 202:
        return payload
    message = payload.get("error", payload) if isinstance(payload, dict) else payload
    if status in RETRY_STATUSES:
        raise _Retry(f"status {status}: {message}", _seconds(retry_after))
    raise ProducerError(f"collector refused the batch ({status}): {message}", status)


async def _json_or_text(resp: aiohttp.ClientResponse) -> Any:
    try:
        return await resp.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return await resp.text()


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _WsChannel:
    """One WebSocket to ``/v1/events/stream`` with answers matched by sequence number."""

    def __init__(self, client: ProducerClient) -> None:
        self.client = client
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.sent = 0
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()
        self.send_lock = asyncio.Lock()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        async with self.lock:
            if self.ws is None or self.ws.closed:
                session = self.client._session
                assert session is not None
                self.ws = await session.ws_connect(
                    f"{self.client.url}/v1/events/stream", heartbeat=30.0, max_msg_size=0
                )
                self.sent = 0
                self.reader = asyncio.create_task(self._read(self.ws))
            return self.ws

    async def send(self, body: bytes, *, text: bool) -> dict[str, Any]:
        try:
            ws = await self._connect()
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            # Numbering and sending under one lock: the seq noted is the one the server
            # gives this frame (it counts frames per connection).
            async with self.send_lock:
                self.sent += 1
                self.waiting[self.sent] = future
                await (ws.send_str(body.decode()) if text else ws.send_bytes(body))
            answer = await future
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in RETRY_STATUSES:
                raise _Retry(f"handshake refused: {exc.status}") from None
            raise ProducerError(
                f"stream refused ({exc.status}): {exc.message}", exc.status
            ) from None
        except (aiohttp.ClientError, OSError, ConnectionError) as exc:
            raise _Retry(f"stream failed: {exc or type(exc).__name__}") from None
        if "error" in answer:
            status = int(answer.get("status", 400))
            return _check_answer(status, answer, str(answer.get("retry_after", "")))
        return answer

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    answer = json.loads(msg.data)
                    future = self.waiting.pop(int(answer.get("seq", 0)), None)
                    if future is not None and not future.done():
                        future.set_result(answer)
        finally:
            lost = ConnectionError("stream closed before the answer")
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(lost)
            self.waiting.clear()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
