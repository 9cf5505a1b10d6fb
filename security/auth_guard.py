"""What keeps a flood of bad tokens cheap: in-process failure windows and token memories.

The auth gate (``security.auth``) asks these before and after a token lookup:

* :class:`FailureLedger` counts failed authentications per remote address in
  fixed windows (60 s from the first failure), in this process only: past the
  limit a refusal costs no Redis round trip and no audit record; each window
  that refused anything is summed up once, as one ``auth.throttled`` record
  (counts and the busiest paths), when it ends;
* :class:`TokenMemory` remembers digests of tokens recently refused (answered
  again without Redis: a random token never becomes valid) and of tokens
  recently accepted (a console's token skips the queue below; it is still
  checked in Redis each time, so a revocation holds at once);
* :class:`LookupLane` bounds how many lookups of not-yet-known tokens run at
  once, with a wait timeout, so unauthenticated requests can never take more
  than a few of the Redis pool's connections: the one who waits too long is
  answered 503, and a known console token never waits in that lane.

:func:`clean_target` cuts a request path to a bound and escapes control
characters, so an audit record stays small and cannot carry terminal escapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from watchfloor.core.printable import printable

MAX_TARGET: Final = 200
"""Characters of a request path kept in an audit record."""
MAX_PATHS: Final = 5
"""Distinct paths kept per throttled window (the busiest)."""
MAX_ADDRESSES: Final = 10_000
MAX_TOKENS: Final = 10_000


def clean_target(text: str, limit: int = MAX_TARGET) -> str:
    """``text`` made printable (``core.printable``: controls, bidi overrides and
    zero-width characters escaped) and cut to ``limit`` characters."""
    shown = printable(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


@dataclass(slots=True)
class FailureWindow:
    """One address's failures in one window."""

    address: str
    ends: float
    """Monotonic time the window closes."""
    started_at: float
    """Wall-clock time of its first failure (for the audit record)."""
    failures: int = 0
    refused: int = 0
    """Failures past the limit: answered 429 without Redis or an audit record each."""
    paths: Counter[str] = field(default_factory=Counter)

    def summary(self, window_s: float) -> dict[str, object]:
        return {
            "remote": self.address,
            "failures": self.failures,
            "throttled": self.refused,
            "window_s": window_s,
            "first_at": round(self.started_at, 3),
            "paths": dict(self.paths.most_common(MAX_PATHS)),
        }


class FailureLedger:
    """Failed authentications per address in fixed windows, in memory."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = max(1, limit)
        self.window_s = window_s
        self._windows: dict[str, FailureWindow] = {}
        self._ended: list[FailureWindow] = []

    def count(self, address: str, path: str, now: float | None = None) -> FailureWindow:
        """Count one failure of ``address`` (on ``path``) and return its window."""
        now = time.monotonic() if now is None else now
        window = self._windows.get(address)
        if window is None or window.ends <= now:
            if window is not None:
                self._close(window)
            if len(self._windows) >= MAX_ADDRESSES:
                self.expire(now)
            if len(self._windows) >= MAX_ADDRESSES:  # still full: the oldest goes first
                self._close(self._windows[next(iter(self._windows))])
            window = FailureWindow(address, now + self.window_s, time.time())
            self._windows[address] = window
        window.failures += 1
        if window.failures > self.limit:
            window.refused += 1
            if path in window.paths or len(window.paths) < 4 * MAX_PATHS:
                window.paths[clean_target(path, 80)] += 1
        return window

    def throttled(self, window: FailureWindow) -> bool:
        return window.failures > self.limit

    def is_throttled(self, address: str, now: float | None = None) -> bool:
        """Past the limit in a window still open (before any lookup)."""
        window = self._windows.get(address)
        now = time.monotonic() if now is None else now
        return window is not None and window.ends > now and window.failures >= self.limit

    def retry_after(self, window: FailureWindow, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return max(1, math.ceil(window.ends - now))

    def expire(self, now: float | None = None) -> None:
        """Close the windows whose time is over."""
        now = time.monotonic() if now is None else now
        for window in [w for w in self._windows.values() if w.ends <= now]:
            self._close(window)

    def take_ended(self, everything: bool = False) -> list[FailureWindow]:
        """The closed windows that refused something (to audit once); all open ones too at exit."""
        if everything:
            for window in list(self._windows.values()):
                self._close(window)
        ended, self._ended = self._ended, []
        return ended

    def _close(self, window: FailureWindow) -> None:
        if self._windows.get(window.address) is window:
            del self._windows[window.address]
        if window.refused:
            self._ended.append(window)


class TokenMemory:
    """Digests of tokens seen recently, each for ``ttl_s`` (bounded, oldest dropped first)."""

    def __init__(self, ttl_s: float, size: int = MAX_TOKENS) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._seen: dict[bytes, float] = {}

    def __contains__(self, token: str) -> bool:
        digest = _digest(token)
        expires = self._seen.get(digest)
        if expires is None:
            return False
        if expires <= time.monotonic():
            del self._seen[digest]
            return False
        return True

    def add(self, token: str) -> None:
        digest = _digest(token)
        self._seen.pop(digest, None)
        while len(self._seen) >= self.size:
            del self._seen[next(iter(self._seen))]
        self._seen[digest] = time.monotonic() + self.ttl_s


class LaneBusy(Exception):
    """No lookup slot came free in time."""


class LookupLane:
    """At most ``slots`` lookups of unknown tokens at once; waiting longer than ``wait_s`` fails."""

    def __init__(self, slots: int = 4, wait_s: float = 2.0) -> None:
        self._slots = asyncio.Semaphore(slots)
        self.wait_s = wait_s

    async def __aenter__(self) -> None:
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_s)
        except TimeoutError:
            raise LaneBusy from None

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
