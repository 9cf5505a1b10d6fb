"""The one way a Watchfloor process opens a Redis client.

Every service and command goes through :func:`connect` (asyncio) or
:func:`connect_sync`, so what a connection needs beyond its URL (the embedded
Redis's secret, its Unix socket, the asyncio retry policy that redis-py asks
for) is decided in one place and never copied.

A URL may name a file holding the password instead of the password itself:
``unix:///DATA/redis/redis.sock?db=0&password_file=/DATA/keys/redis.secret``.
Such a URL can be printed, logged, kept in the owner lock and passed on a
child's command line: only a process that can read the 0600 file can log in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
import redis.asyncio as aioredis

PASSWORD_FILE_PARAM = "password_file"


class RedisSecretError(Exception):
    """The password file a Redis URL names cannot be read."""


def connect(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for ``url``; ``options`` are redis-py's (timeouts, retry)."""
    plain, options = resolve(url, options)
    return aioredis.Redis.from_url(plain, **options)


def connect_sync(url: str, **options: Any) -> redis.Redis:
    """A blocking client for ``url`` (start-up checks, test fixtures)."""
    plain, options = resolve(url, options)
    return redis.Redis.from_url(plain, **options)


def with_password_file(url: str, path: str | Path) -> str:
    """``url`` with a ``password_file`` parameter naming ``path``."""
    base, query = _split(url)
    query = [(k, v) for k, v in query if k != PASSWORD_FILE_PARAM]
    query.append((PASSWORD_FILE_PARAM, str(Path(path).resolve())))
    return _join(base, query)


def resolve(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split a ``password_file`` parameter off ``url`` into a ``password`` option."""
    base, query = _split(url)
    files = [v for k, v in query if k == PASSWORD_FILE_PARAM]
    if not files:
        return url, options
    plain = _join(base, [(k, v) for k, v in query if k != PASSWORD_FILE_PARAM])
    if "password" in options or urlsplit(url).password:
        return plain, options
    return plain, {**options, "password": read_secret(Path(files[-1]))}


# By hand rather than urlunsplit, which turns "unix:///path" into "unix:/path".
def _split(url: str) -> tuple[str, list[tuple[str, str]]]:
    base, _, query = url.partition("?")
    return base, parse_qsl(query)


def _join(base: str, query: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(query, safe='/')}" if query else base


def read_secret(path: Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RedisSecretError(
            f"cannot read the Redis password file {path}: {exc.strerror}"
        ) from None
    if not secret:
        raise RedisSecretError(f"the Redis password file {path} is empty")
    return secret
