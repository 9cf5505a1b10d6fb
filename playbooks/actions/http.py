"""HTTP delivery with bounded retries, and the ``http`` action (call an internal endpoint).

Every delivery of one step attempt carries the same ``Idempotency-Key`` header,
so a receiver that honours it acts at most once per attempt even when a retry
follows a timeout whose request did arrive. Retries (transport errors, 5xx,
429) back off exponentially; other answers are final.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    """Deliveries at most (the first one included)."""
    backoff_s: float = 0.5
    """Wait before the second delivery; doubled before each next one."""
    timeout_s: float = 10.0


@dataclass(slots=True)
class ActionResult:
    """What an action did: shown on the step (``action_result``)."""

    ok: bool
    detail: str = ""
    attempts: int = 0
    status: int | None = None
    suppressed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "detail": self.detail, "attempts": self.attempts}
        if self.status is not None:
            out["status"] = self.status
        if self.suppressed:
            out["suppressed"] = True
        out.update(self.extra)
        return out


Check = Callable[[int, str], tuple[bool, str]]


def default_check(status: int, body: str) -> tuple[bool, str]:
    return 200 <= status < 300, f"HTTP {status}"


def _retryable(status: int) -> bool:
    return status >= 500 or status == 429


async def deliver(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    body: Any,
    key: str,
    policy: RetryPolicy,
    check: Check = default_check,
) -> ActionResult:
    """Send ``body`` (JSON) with retries; the result says how it went, never raises."""
    headers = {IDEMPOTENCY_HEADER: key, "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    detail, status = "not sent", None
    for attempt in range(1, policy.attempts + 1):
        try:
            timeout = aiohttp.ClientTimeout(total=policy.timeout_s)
            async with session.request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as resp:
                status, text = resp.status, await resp.text()
            ok, detail = check(status, text)
            if ok:
                return ActionResult(True, detail, attempt, status)
            if not _retryable(status):
                return ActionResult(False, detail, attempt, status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail, status = f"{type(exc).__name__}: {exc}".strip(": "), None
        logger.warning("delivery failed attempt=%d key=%s detail=%s", attempt, key, detail)
        if attempt < policy.attempts:
            await asyncio.sleep(policy.backoff_s * 2 ** (attempt - 1))
    return ActionResult(False, detail, policy.attempts, status)


async def call_endpoint(
    session: aiohttp.ClientSession,
    action: dict[str, Any],
    body: Any,
    *,
    key: str,
    policy: RetryPolicy,
) -> ActionResult:
    """The ``http`` action: ``method`` (POST) ``url`` with a JSON ``body``."""
    method = action.get("method", "POST")
    return await deliver(
        session,
        method,
        action["url"],
        body=body if method != "GET" else None,
        key=key,
        policy=policy,
    )
