"""Producer request signatures: HMAC-SHA256 over the timestamp and the raw body.

A producer sends ``X-Watchfloor-Signature: t=<unix seconds>,v1=<hex>`` where
``hex = HMAC-SHA256(secret, f"{t}.".encode() + body)``. During a rotation the
producer may send one ``v1=`` per secret it holds, and the collector accepts a
request when any of them matches any secret it holds for that source. A
timestamp further than the tolerance (300 s) from the collector's clock is
refused, so a captured request cannot be replayed later; within the window,
:func:`seen_before` remembers (source, event id) pairs in Redis so the same
signed event is not accepted twice.

Secrets live in ``DATA_DIR/keys/signing/<source>.secrets``, one per line, file
mode 0600; the last line is the newest. :meth:`SigningKeys.add` appends one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets as pysecrets
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.security import keys as keyfiles

logger = logging.getLogger(__name__)

HEADER: Final = "X-Watchfloor-Signature"
SCHEME: Final = "v1"
DEFAULT_TOLERANCE_S: Final = 300.0
MAX_HEADER_CHARS: Final = 2048
SECRET_PREFIX: Final = "whsec_"
SOURCE_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_HEX_RE: Final = re.compile(r"^[0-9a-f]{64}$")


class SignatureError(Exception):
    """A request's signature is missing, malformed, stale or does not match."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def compute(body: bytes, secret: str, t: int) -> str:
    """Hex HMAC-SHA256 of ``f"{t}." + body`` under ``secret``."""
    message = f"{t}.".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str | Sequence[str], t: int | None = None) -> str:
    """Header value ``t=<unix>,v1=<hex>`` (one ``v1`` per secret when given several)."""
    t = int(time.time()) if t is None else int(t)
    secrets_ = [secret] if isinstance(secret, str) else list(secret)
    if not secrets_:
        raise ValueError("sign() needs at least one secret")
    parts = [f"t={t}"] + [f"{SCHEME}={compute(body, s, t)}" for s in secrets_]
    return ",".join(parts)


def parse_header(header: str) -> tuple[int, list[str]]:
    """``(t, [v1 signatures])`` of a header value; unknown schemes are ignored."""
    if not header or len(header) > MAX_HEADER_CHARS:
        raise SignatureError("missing or oversized signature header")
    t: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed signature header item {item.strip()[:20]!r}")
        if name == "t":
            if t is not None or not value.isdigit() or len(value) > 12:
                raise SignatureError("malformed signature timestamp")
            t = int(value)
        elif name == SCHEME:
            if not _HEX_RE.match(value):
                raise SignatureError("malformed v1 signature: 64 lowercase hex digits expected")
            signatures.append(value)
    if t is None:
        raise SignatureError("signature header has no timestamp")
    if not signatures:
        raise SignatureError("signature header has no v1 signature")
    return t, signatures


def verify(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check ``header`` against ``body``; raises :class:`SignatureError` on any problem."""
    if not secrets:
        raise SignatureError("no signing secret configured for this source")
    t, signatures = parse_header(header or "")
    now = time.time() if now is None else now
    if abs(now - t) > tolerance_s:
        raise SignatureError(f"signature timestamp {t} is outside the {tolerance_s:g} s tolerance")
    expected = [compute(body, secret, t) for secret in secrets]
    matched = False
    for candidate in signatures:
        for good in expected:
            # Compare every pair: no early exit that could hint which secret matched.
            matched |= hmac.compare_digest(candidate.encode(), good.encode())
    if not matched:
        raise SignatureError("signature does not match")


# Secrets on disk ----------------------------------------------------------------------


def signing_dir(data_dir: str | Path) -> Path:
    return keyfiles.signing_secrets_dir(data_dir)


def _check_source(source: str) -> None:
    if not SOURCE_RE.match(source):
        raise SignatureError(f"bad source name {source!r} for a signing secret")


class SigningKeys:
    """The producers' signing secrets, by source (or token name)."""

    def __init__(self, by_source: dict[str, list[str]]) -> None:
        self._by_source = by_source

    @classmethod
    def load(cls, data_dir: str | Path) -> SigningKeys:
        """Read every ``*.secrets`` file of ``DATA_DIR/keys/signing`` (none: no secrets)."""
        by_source: dict[str, list[str]] = {}
        folder = signing_dir(data_dir)
        if folder.is_dir():
            for path in sorted(folder.glob("*.secrets")):
                by_source[path.stem] = _read_secrets(path)
        return cls(by_source)

    def secrets_for(self, source: str) -> list[str]:
        """The secrets accepted for ``source``, oldest first (empty: unsigned source)."""
        return list(self._by_source.get(source, ()))

    def sources(self) -> list[str]:
        return sorted(self._by_source)

    @staticmethod
    def add(data_dir: str | Path, source: str) -> str:
        """Create a new secret for ``source`` (appended: older ones stay valid); return it."""
        _check_source(source)
        keyfiles.ensure_keys_dir(data_dir)
        folder = signing_dir(data_dir)
        folder.mkdir(exist_ok=True, mode=keyfiles.DIR_MODE)
        os.chmod(folder, keyfiles.DIR_MODE)
        secret = SECRET_PREFIX + pysecrets.token_urlsafe(32)
        path = folder / f"{source}.secrets"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(secret + "\n")
        os.chmod(path, 0o600)
        logger.info("signing secret added source=%s", source)
        return secret

    @staticmethod
    def retire(data_dir: str | Path, source: str, keep: int = 1) -> int:
        """Keep only the newest ``keep`` secrets of ``source``; return how many were dropped."""
        _check_source(source)
        path = signing_dir(data_dir) / f"{source}.secrets"
        if not path.exists():
            raise SignatureError(f"no signing secrets for source {source!r}")
        current = _read_secrets(path)
        kept = current[-keep:] if keep > 0 else []
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(s + "\n" for s in kept)
        os.replace(tmp, path)
        return len(current) - len(kept)


def _read_secrets(path: Path) -> list[str]:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning("signing secrets readable by others path=%s mode=%o", path, mode)
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# Replay cache ---------------------------------------------------------------------------

# Atomically: drop expired ids, then for each id report 1 if it was already there,
# else add it with its expiry as score and report 0.
_SEEN_SCRIPT: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    out[#out + 1] = 1
  else
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
    out[#out + 1] = 0
  end
end
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2] - ARGV[1]))
return out
"""


def replay_window_s(tolerance_s: float = DEFAULT_TOLERANCE_S) -> float:
    """How long an id is remembered: a timestamp may be ``tolerance`` early or late."""
    return 2 * tolerance_s


async def seen_many(
    redis: aioredis.Redis,
    source: str,
    event_ids: Iterable[str],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> list[bool]:
    """For each id, whether (source, id) was already accepted in the window; records the rest."""
    ids = list(event_ids)
    if not ids:
        return []
    now = time.time()
    expiry = now + replay_window_s(tolerance_s)
    flags = await redis.eval(  # type: ignore[misc]
        _SEEN_SCRIPT, 1, keys.signature_replay(source), repr(now), repr(expiry), *ids
    )
    return [bool(flag) for flag in flags]


async def seen_before(
    redis: aioredis.Redis, source: str, event_id: str, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> bool:
    """True if (source, event id) was already accepted within the replay window."""
    return (await seen_many(redis, source, [event_id], tolerance_s))[0]
