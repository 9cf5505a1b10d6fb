"""The console's only link to Watchfloor: the monitor API over HTTP and WebSocket.

:class:`ApiClient` sends commands (acknowledge, resolve, step done...) with
aiohttp and turns refusals into :class:`ApiError`. :class:`LiveFeed` keeps the
``/v1/live`` WebSocket open: it reconnects with capped, jittered backoff,
resumes with ``after=<seq>`` so nothing is missed, and posts past-tense
messages to the app. Bursts of changes are coalesced (toolong's lesson): at
most one :class:`~console.messages.ChangesReceived` per ``flush_interval``,
a newer change of a row replacing the queued one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from textual.message import Message
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from watchfloor.console.messages import (
    ChangesReceived,
    LiveConnected,
    LiveDisconnected,
    PingReceived,
    SnapshotReceived,
)

logger = logging.getLogger(__name__)

YIELD_EVERY = 50
"""Messages read from the socket before the feed lets the event loop run others."""


class ConsoleError(Exception):
    """Base error of the console."""


class ApiError(ConsoleError):
    """The API answered with an error status (``status`` 0: it could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def unreachable(self) -> bool:
        return self.status == 0


class ApiClient:
    """REST commands to the monitor API with one bearer token."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.token}"}, timeout=self._timeout
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One call; the JSON answer, or :class:`ApiError` with the API's own message."""
        url = f"{self.base_url}{path}"
        try:
            async with self._client().request(method, url, json=body, params=params) as resp:
                text = await resp.text()
                data = _json_or_text(text)
                if resp.status >= 400:
                    message = data.get("error") if isinstance(data, dict) else None
                    raise ApiError(resp.status, str(message or text or resp.reason))
                return data if isinstance(data, dict) else {"data": data}
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiError(0, str(exc) or type(exc).__name__) from exc

    # --- the API's endpoints -------------------------------------------------------------

    async def roster(self) -> dict[str, Any]:
        """Who is on duty now (``GET /v1/roster``)."""
        return await self.request("GET", "/v1/roster")

    async def whoami(self) -> dict[str, Any]:
        return await self.request("GET", "/v1/whoami")

    async def permissions(
        self, incident_id: str | None = None, run_id: str | None = None
    ) -> dict[str, Any]:
        """What this token may do overall, and on the incident / run given."""
        params = {k: v for k, v in (("incident", incident_id), ("run", run_id)) if v}
        return await self.request("GET", "/v1/permissions", params=params or None)

    async def incidents(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Incidents by the list's filters (``GET /v1/incidents``): the history screen."""
        data = await self.request("GET", "/v1/incidents", params=params)
        return list(data.get("incidents") or [])

    async def incident(self, incident_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/incidents/{_seg(incident_id)}")

    async def acknowledge(self, incident_id: str, note: str | None = None) -> dict[str, Any]:
        return await self.request("POST", f"/v1/incidents/{_seg(incident_id)}/ack", _note(note))

    async def resolve(self, incident_id: str, note: str | None = None) -> dict[str, Any]:
        return await self.request("POST", f"/v1/incidents/{_seg(incident_id)}/resolve", _note(note))

    async def add_note(self, incident_id: str, note: str) -> dict[str, Any]:
        return await self.request("POST", f"/v1/incidents/{_seg(incident_id)}/note", {"note": note})

    async def run(self, run_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/runs/{_seg(run_id)}")

    async def step_done(self, run_id: str, step_id: str, note: str | None = None) -> dict[str, Any]:
        return await self.request(
            "POST", f"/v1/runs/{_seg(run_id)}/steps/{_seg(step_id)}/done", _note(note)
        )

    async def step_escalate(
        self, run_id: str, step_id: str, note: str | None = None
    ) -> dict[str, Any]:
        return await self.request(
            "POST", f"/v1/runs/{_seg(run_id)}/steps/{_seg(step_id)}/escalate", _note(note)
        )

    async def step_approve(
        self, run_id: str, step_id: str, note: str | None = None
    ) -> dict[str, Any]:
        return await self.request(
            "POST", f"/v1/runs/{_seg(run_id)}/steps/{_seg(step_id)}/approve", _note(note)
        )

    async def start_run(
        self, playbook: str, incident_id: str, drill: bool = False
    ) -> dict[str, Any]:
        return await self.request(
            "POST", "/v1/runs", {"playbook": playbook, "incident": incident_id, "drill": drill}
        )

    async def step_skip(self, run_id: str, step_id: str, note: str | None = None) -> dict[str, Any]:
        return await self.request(
            "POST", f"/v1/runs/{_seg(run_id)}/steps/{_seg(step_id)}/skip", _note(note)
        )

    async def abort_run(self, run_id: str, note: str | None = None) -> dict[str, Any]:
        return await self.request("POST", f"/v1/runs/{_seg(run_id)}/abort", _note(note))

    async def create_incident(self, title: str, severity: str, subject: str) -> dict[str, Any]:
        body = {"title": title, "severity": severity, "subject": subject}
        return await self.request("POST", "/v1/incidents", body)

    async def silence(
        self, matchers: dict[str, str], duration_s: float, reason: str
    ) -> dict[str, Any]:
        body = {"matchers": matchers, "duration_s": duration_s, "reason": reason}
        return await self.request("POST", "/v1/silences", body)

    async def step_retry(self, run_id: str, step_id: str) -> dict[str, Any]:
        """Run a step's failed action again (a notification that did not get through)."""
        return await self.request(
            "POST", f"/v1/runs/{_seg(run_id)}/steps/{_seg(step_id)}/retry", {}
        )

    async def silences(self) -> list[dict[str, Any]]:
        """The silences not yet expired (``GET /v1/silences``)."""
        data = await self.request("GET", "/v1/silences")
        return list(data.get("silences") or [])

    async def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return await self.request("DELETE", f"/v1/silences/{_seg(silence_id)}")

    async def playbooks(self) -> list[dict[str, Any]]:
        """The playbook library (``GET /v1/playbooks``), by id."""
        data = await self.request("GET", "/v1/playbooks")
        return list(data.get("playbooks") or [])

    async def audit(self, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        data = await self.request("GET", "/v1/audit", params={"after": after, "limit": limit})
        return list(data.get("records") or [])

    async def audit_verify(self) -> dict[str, Any] | None:
        """The API's verification status, or ``None`` when it does not offer one."""
        try:
            return await self.request("GET", "/v1/audit/verify")
        except ApiError as exc:
            if exc.status in (404, 405):
                return None
            raise


def _seg(value: str) -> str:
    return quote(value, safe="")


def _note(note: str | None) -> dict[str, Any]:
    return {"note": note} if note else {}


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


def live_url(base_url: str, after: str | None) -> str:
    """``http://h:p`` -> ``ws://h:p/v1/live[?after=seq]``."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    url = f"{base}/v1/live"
    return f"{url}?after={quote(after, safe='')}" if after else url


class Backoff:
    """Capped exponential backoff with jitter; ``reset()`` after a good connection."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 10.0) -> None:
        self.first_s, self.cap_s = first_s, cap_s
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.cap_s, self.first_s * (2**self.attempt))
        self.attempt += 1
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.attempt = 0


class LiveFeed:
    """Keeps ``/v1/live`` open and posts what arrives to ``post`` (the app)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        post: Callable[[Message], Any],
        *,
        flush_interval_s: float = 0.1,
        backoff: Backoff | None = None,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.post = post
        self.flush_interval_s = flush_interval_s
        self.backoff = backoff or Backoff()
        self.seq: str | None = None
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        """Connect, read, reconnect forever (until cancelled)."""
        while True:
            reason, fatal = await self._session()
            self._flush()
            delay = self.backoff.next()
            if fatal:
                delay = max(delay, self.backoff.cap_s)
            logger.warning("live feed closed reason=%s retry_in=%.1fs", reason, delay)
            self.post(LiveDisconnected(reason, delay, fatal))
            await asyncio.sleep(delay)

    async def _session(self) -> tuple[str, bool]:
        url = live_url(self.base_url, self.seq)
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            # No permessage-deflate: at thousands of small messages a second the
            # compression costs more CPU than the bytes it saves on a LAN.
            async with connect(
                url,
                additional_headers=headers,
                open_timeout=5,
                max_size=64 * 2**20,
                ping_interval=20,
                compression=None,
            ) as ws:
                self.post(LiveConnected())
                read = 0
                async for raw in ws:
                    self._handle(json.loads(raw))
                    read += 1
                    if read % YIELD_EVERY == 0:
                        # A full socket buffer is read without ever suspending: let the
                        # app handle keys and draw between bursts.
                        await asyncio.sleep(0)
                return "closed by the server", False
        except InvalidStatus as exc:
            status = exc.response.status_code
            return f"HTTP {status}", status in (401, 403)
        except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
            return str(exc) or type(exc).__name__, False

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "change":
            self.seq = message.get("seq") or self.seq
            self._queue(message)
        elif kind == "snapshot":
            self.seq = message.get("seq")
            self.backoff.reset()
            self._pending.clear()
            self.post(SnapshotReceived(message))
        elif kind == "resume":
            self.backoff.reset()
        elif kind == "ping":
            self.post(PingReceived(message.get("at")))

    def _queue(self, message: dict[str, Any]) -> None:
        data = message.get("data") or {}
        row = data.get("id") or data.get("queue") or data.get("subject") or data.get("name")
        key = (str(message.get("kind")), str(row))
        # A newer change of the same row replaces the queued one (dict order moves it last).
        self._pending.pop(key, None)
        self._pending[key] = message
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.flush_interval_s, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._pending:
            changes = list(self._pending.values())
            self._pending.clear()
            self.post(ChangesReceived(changes))
