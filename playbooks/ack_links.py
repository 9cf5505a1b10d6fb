"""Acknowledge links: a signed, expiring, single-use URL that acknowledges one incident
as one person, opened from the phone the page reached.

The token is ``base64url(json payload) "." base64url(HMAC-SHA256)`` keyed with
``keys/paging-ack.key`` (0600, made on first use). The payload names the incident,
the person (their name becomes the audit actor), a random nonce and the expiry.
Single use is enforced in Redis (``SET NX`` on the nonce, kept until the link
expires), so a link forwarded or opened twice acknowledges at most once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.private_files import ensure_secret
from watchfloor.playbooks.errors import PlaybookError

KEY_FILE: Final = "paging-ack.key"
MAX_TOKEN: Final = 2048


class AckLinkError(PlaybookError):
    """The link is malformed, forged or expired (400/403)."""


class AckLinkUsed(PlaybookError):
    """The link was used already (410)."""

    status = 410


@dataclass(frozen=True, slots=True)
class AckClaim:
    incident: str
    person: str
    role: str
    nonce: str
    expires: float


def load_ack_key(data_dir: str | Path) -> bytes:
    """The link signing key in ``DATA_DIR/keys/``, generated the first time."""
    return ensure_secret(Path(data_dir, "keys", KEY_FILE)).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(key: bytes, incident: str, person: str, role: str, expires: float) -> str:
    payload = {"i": incident, "p": person, "r": role, "n": secrets.token_urlsafe(12),
               "e": round(expires, 3)}  # fmt: skip
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def read_token(key: bytes, token: str, now: float) -> AckClaim:
    """The claim of a genuine, unexpired token; :class:`AckLinkError` otherwise."""
    body, _, sig = token.partition(".")
    if not body or not sig or len(token) > MAX_TOKEN:
        raise AckLinkError("not an acknowledge link")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        raise AckLinkError("acknowledge link signature does not match")
    try:
        p = json.loads(_unb64(body))
        claim = AckClaim(str(p["i"]), str(p["p"]), str(p["r"]), str(p["n"]), float(p["e"]))
    except (ValueError, KeyError, TypeError):
        raise AckLinkError("acknowledge link payload is malformed") from None
    if claim.expires <= now:
        raise AckLinkError("acknowledge link expired")
    return claim


async def use_once(redis: aioredis.Redis, claim: AckClaim, now: float) -> None:
    """Mark the link used; :class:`AckLinkUsed` when it was used before."""
    ttl_ms = max(1, int((claim.expires - now) * 1000))
    if not await redis.set(keys.paging_ack_used(claim.nonce), claim.person, nx=True, px=ttl_ms):
        raise AckLinkUsed("this acknowledge link was used already")
