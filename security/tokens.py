"""API tokens: random secrets shown once, stored only as SHA-256 hashes.

A token is ``wf_`` followed by 43 url-safe characters (256 random bits). Redis
never sees it: the hash ``keys.TOKENS`` maps ``sha256(token)`` (hex) to a
msgpack record ``{"name", "role", "created", "expires", "revoked"}``. Checking a
token is one ``HGET``; a stolen Redis dump yields no usable token. Names are
unique among live tokens (neither revoked nor expired), so ``revoke(name)``
always means one credential. Revoked and expired records stay in the hash so
``watchfloor token list`` can show the history.

Records are sealed: with a :class:`TokenSeal` (the key in
``DATA_DIR/keys/tokens.key``, 0600, read only by Watchfloor's own processes)
each record carries an HMAC of its digest, name, role, times and revocation.
Something that can write to Redis but not read the keys folder (a stray local
client, a restored or edited AOF) cannot mint a token: a record whose seal does
not match is refused, logged as an error, kept in ``wf:tokens:forged`` for
``doctor``, and shown as ``forged`` by ``watchfloor token list``. An HMAC
rather than a look-up of the ``token.create`` audit record, because the same
writer could append that record too, and because checking a request's token
must stay one ``HGET``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgpack
import redis.asyncio as aioredis

from watchfloor.core import keys
from watchfloor.core.redis_tx import transact
from watchfloor.security.roles import ROLES

logger = logging.getLogger(__name__)

TOKEN_PREFIX: Final = "wf_"
MAX_TOKEN_CHARS: Final = 256
SHORT_ID_CHARS: Final = 10
NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


SEAL_KEY_NAME: Final = "tokens.key"
FORGED_KEY: Final = f"{keys.TOKENS}:forged"
SEALED_FIELDS: Final = ("name", "role", "created", "expires", "revoked")

TokenRow = dict[str, Any]
Records = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the token's name and its role."""

    name: str
    role: str


class TokenError(Exception):
    """A token could not be created or changed (bad name, role or duration)."""

    status = 400


class TokenConflict(TokenError):
    """A live token with this name already exists."""

    status = 409


class TokenSeal:
    """HMAC-SHA256 over a token record, with a key only Watchfloor's processes read.

    The key is read from its file the first time it exists: services started
    before the data directory's first ``up`` or ``token create`` begin to check
    seals as soon as the key appears, and never stop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: bytes | None = None

    def __repr__(self) -> str:
        return f"TokenSeal({self.path})"

    @property
    def key(self) -> bytes | None:
        if self._key is None and self.path.exists():
            self._key = self.path.read_bytes()
        return self._key

    def mac(self, digest: str, record: dict[str, Any]) -> str:
        key = self.key
        if key is None:
            raise RuntimeError(f"no token seal key at {self.path}")
        fields = [digest, *(record.get(name) for name in SEALED_FIELDS)]
        message = json.dumps(fields, separators=(",", ":")).encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def sealed(self, digest: str, record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "mac": self.mac(digest, record)} if self.key else record

    def valid(self, digest: str, record: dict[str, Any]) -> bool:
        if self.key is None:
            return True
        mac = record.get("mac")
        return isinstance(mac, str) and hmac.compare_digest(mac, self.mac(digest, record))


def load_seal(data_dir: str | Path, *, create: bool = True) -> TokenSeal:
    """The data directory's token seal (``keys/tokens.key``), created if ``create``."""
    path = Path(data_dir) / "keys" / SEAL_KEY_NAME
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # two first starts: the first one wins
            os.link(tmp, path)  # never replaces: a key in use is never changed under us
        tmp.unlink()
    return TokenSeal(path)


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token: the only form in which it is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> float:
    """``"90"``, ``"30m"``, ``"8h"``, ``"7d"``, ``"2w"`` -> seconds (positive)."""
    match = _DURATION_RE.match(text)
    if not match:
        raise TokenError(f"bad duration {text!r}: use a number with s, m, h, d or w (e.g. 8h)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise TokenError(f"bad duration {text!r}: must be positive")
    return seconds


def _state(record: dict[str, Any], now: float) -> str:
    if record.get("revoked"):
        return "revoked"
    expires = record.get("expires")
    if expires is not None and expires <= now:
        return "expired"
    return "active"


class TokenStore:
    """Create, verify, list and revoke API tokens in Redis."""

    def __init__(
        self, redis: aioredis.Redis, key: str = keys.TOKENS, seal: TokenSeal | None = None
    ) -> None:
        self.redis = redis
        self.key = key
        self.seal = seal
        """Without a seal records are neither sealed nor checked (tests of other parts)."""

    def _pack(self, digest: str, record: dict[str, Any]) -> bytes:
        packed: bytes = msgpack.packb(self.seal.sealed(digest, record) if self.seal else record)
        return packed

    def forged(self, digest: str, record: dict[str, Any]) -> bool:
        return self.seal is not None and not self.seal.valid(digest, record)

    async def create(
        self, name: str, role: str, ttl_s: float | None = None
    ) -> tuple[str, TokenRow]:
        """A new token for ``name`` with ``role``; returns ``(token, public record)``.

        The token itself is returned here only: it cannot be recovered later.
        """
        _check_new(name, role, ttl_s)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = hash_token(token)
        now = time.time()
        record = {
            "name": name,
            "role": role,
            "created": now,
            "expires": now + ttl_s if ttl_s else None,
            "revoked": None,
        }

        async def add(pipe: Any) -> None:
            live = [
                r
                for d, r in await self._records(pipe)
                if _state(r, now) == "active" and not self.forged(d, r)
            ]
            if any(r["name"] == name for r in live):
                raise TokenConflict(f"a live token named {name!r} already exists")
            pipe.multi()
            pipe.hset(self.key, digest, self._pack(digest, record))

        await transact(self.redis, [self.key], add)
        logger.info("token created name=%s role=%s ttl_s=%s", name, role, ttl_s)
        return token, _public(digest, record, now)

    async def verify(self, token: str) -> Principal | None:
        """The principal of a live token; ``None`` for unknown, revoked or expired ones."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = hash_token(token)
        raw = await self.redis.hget(self.key, digest)
        if raw is None:
            return None
        record = msgpack.unpackb(raw)
        if self.forged(digest, record):
            await self._report_forged(digest, record)
            return None
        if _state(record, time.time()) != "active":
            return None
        return Principal(name=record["name"], role=record["role"])

    async def _report_forged(self, digest: str, record: dict[str, Any]) -> None:
        logger.error(
            "token refused: record id=%s name=%r role=%r was not created by watchfloor "
            "(no valid seal); someone wrote to redis directly",
            digest[:SHORT_ID_CHARS], record.get("name"), record.get("role"),
        )  # fmt: skip
        seen = {"name": record.get("name"), "role": record.get("role"), "at": time.time()}
        await self.redis.hset(FORGED_KEY, digest, json.dumps(seen))

    async def forged_records(self) -> list[TokenRow]:
        """Every record in the hash without a valid seal (none when unsealed)."""
        now = time.time()
        return [_public(d, r, now) for d, r in await self._records(self.redis) if self.forged(d, r)]

    async def list(self) -> list[TokenRow]:
        """Every token record (live first, then by creation), with a short id, never the hash."""
        now = time.time()
        rows = [
            {**_public(digest, record, now), **({"state": "forged"} if forged else {})}
            for digest, record in await self._records(self.redis)
            for forged in [self.forged(digest, record)]
        ]
        rows.sort(key=lambda r: (r["state"] != "active", r["created"]))
        return rows

    async def revoke(self, name: str) -> bool:
        """Revoke the live token called ``name``; ``False`` if there is none."""

        async def revoke_live(pipe: Any) -> bool:
            now = time.time()
            live = [
                (digest, record)
                for digest, record in await self._records(pipe)
                if record["name"] == name
                and _state(record, now) == "active"
                and not self.forged(digest, record)
            ]
            if not live:
                return False
            pipe.multi()
            for digest, record in live:
                pipe.hset(self.key, digest, self._pack(digest, {**record, "revoked": now}))
            return True

        if not await transact(self.redis, [self.key], revoke_live):
            return False
        logger.info("token revoked name=%s", name)
        return True

    async def _records(self, client: Any) -> Records:
        raw = await client.hgetall(self.key)
        return [(_text(d), msgpack.unpackb(v)) for d, v in raw.items()]


def _check_new(name: str, role: str, ttl_s: float | None) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise TokenError(
            f"bad token name {name!r}: 1-64 letters, digits or . _ : @ -, "
            "starting with a letter or digit"
        )
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}: one of {', '.join(sorted(ROLES))}")
    if ttl_s is not None and not (isinstance(ttl_s, int | float) and ttl_s > 0):
        raise TokenError(f"bad ttl_s {ttl_s!r}: a positive number of seconds")


def _public(digest: str, record: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "id": digest[:SHORT_ID_CHARS],
        "name": record["name"],
        "role": record["role"],
        "created": record["created"],
        "expires": record.get("expires"),
        "revoked": record.get("revoked"),
        "state": _state(record, now),
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
