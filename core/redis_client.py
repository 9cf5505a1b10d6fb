"""The one way a Watchfloor process opens a Redis client.

Every service and command goes through :func:`connect` (asyncio) or
:func:`connect_sync`, so what a connection needs beyond its URL (the embedded
Redis's secret, its Unix socket, the asyncio retry policy that redis-py asks
for, a Redis Cluster) is decided in one place and never copied.

A URL may name a file holding the password instead of the password itself:
``unix:///DATA/redis/redis.sock?db=0&password_file=/DATA/keys/redis.secret``.
Such a URL can be printed, logged, kept in the owner lock and passed on a
child's command line: only a process that can read the 0600 file can log in.

A **Redis Cluster** is named by ``redis+cluster://host:port,host:port`` (TLS:
``rediss+cluster://``), or by a plain ``redis://host:port`` with ``cluster=True``
(``[redis] cluster = true``, see :func:`connect_for`); the nodes listed are only
where the client starts: it discovers the others. A cluster has db 0 only and no
Unix sockets; a URL that says otherwise is refused with :class:`RedisUrlError`
naming the part that is wrong. Every ``MULTI`` and Lua script must then keep to
one hash slot, which is what the hash tags of ``core.keys`` are for.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import parse_qsl, urlencode

import redis
import redis.asyncio as aioredis
import redis.cluster as sync_cluster
from redis.asyncio import cluster as aio_cluster
from redis.asyncio.connection import parse_url
from redis.exceptions import (
    ClusterDownError,
    RedisClusterException,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
)

PASSWORD_FILE_PARAM = "password_file"
CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""Cluster URL scheme -> the scheme of each node."""
DEFAULT_PORT: Final = 6379


class RedisSecretError(Exception):
    """The password file a Redis URL names cannot be read."""


class RedisUrlError(ValueError):
    """A Redis URL (or the cluster flag with it) is misconfigured; the message says where."""


class ClusterUnreachable(RedisClusterUnreachableError, redis.ConnectionError):
    """No node of a Redis Cluster answered; names every node tried.

    Also a ``ConnectionError``, so code that rides out an outage of a single Redis
    (retry, spool) rides out this one too.
    """


class ClusterDown(ClusterDownError, redis.ConnectionError):
    """A master of the cluster is down and not (yet) replaced: its slots, and with
    ``cluster-require-full-coverage`` every slot, cannot be served. An outage like
    any other (``ConnectionError``): retry later, spool meanwhile."""


class ClusterLoginRefused(RedisClusterException, redis.AuthenticationError):
    """The cluster's nodes answered but refused the password (or its absence)."""


def is_cluster(url: str, cluster_flag: bool = False) -> bool:
    """Whether ``url`` (with ``[redis] cluster`` = ``cluster_flag``) means a Redis Cluster."""
    scheme = url.partition("://")[0].lower()
    return scheme in CLUSTER_SCHEMES or bool(cluster_flag)


def connect(url: str, *, cluster: bool = False, **options: Any) -> aioredis.Redis:
    """An asyncio client for ``url``; ``options`` are redis-py's (timeouts, retry).

    A cluster URL (or ``cluster=True``) gives redis-py's ``RedisCluster``: it speaks
    the same commands, so it is returned under the same type. It connects at its
    first command; when no node answers then, it raises :class:`ClusterUnreachable`.
    """
    plain, options = resolve(url, options)
    if is_cluster(plain, cluster):
        nodes, kwargs = cluster_options(plain, options)
        client = _Cluster(startup_nodes=[aio_cluster.ClusterNode(h, p) for h, p in nodes], **kwargs)
        return cast(aioredis.Redis, client)
    return aioredis.Redis.from_url(plain, **options)


def connect_sync(url: str, *, cluster: bool = False, **options: Any) -> redis.Redis:
    """A blocking client for ``url`` (start-up checks, test fixtures).

    A cluster client connects at once: :class:`ClusterUnreachable` if no node answers.
    """
    plain, options = resolve(url, options)
    if not is_cluster(plain, cluster):
        return redis.Redis.from_url(plain, **options)
    nodes, kwargs = cluster_options(plain, options)
    try:
        client = sync_cluster.RedisCluster(
            startup_nodes=[sync_cluster.ClusterNode(h, p) for h, p in nodes], **kwargs
        )
    except RedisClusterException as exc:
        clear = _unreachable(nodes, exc)
        if clear is exc:
            raise
        raise clear from exc
    return cast(redis.Redis, client)


def connect_for(config: Any, url: str, **options: Any) -> aioredis.Redis:
    """:func:`connect` for a service: a cluster when ``config.redis.cluster`` or the URL says so."""
    return connect(url, cluster=bool(config.redis.cluster), **options)


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
    if "password" in options or _userinfo(url)[1]:
        return plain, options
    return plain, {**options, "password": read_secret(Path(files[-1]))}


def cluster_options(
    url: str, options: dict[str, Any]
) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Startup nodes and client options of a cluster ``url`` (password file already read).

    Raises :class:`RedisUrlError` naming what is wrong: no node, a bad port, a db
    other than 0, a Unix socket.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    shown = redact(url)
    if not sep:
        raise RedisUrlError(f"Redis URL {shown!r} has no scheme (redis+cluster://host:port,...)")
    if scheme == "unix" or scheme.startswith("unix+"):
        raise RedisUrlError(
            f"Redis URL {shown!r}: a Redis Cluster is reached over TCP, not a Unix socket; "
            "name its nodes in [redis] url = redis+cluster://host:port,... "
            "(or set [redis] cluster = false)"
        )
    node_scheme = CLUSTER_SCHEMES.get(scheme, scheme)
    if node_scheme not in ("redis", "rediss"):
        raise RedisUrlError(
            f"Redis URL {shown!r}: unknown scheme {scheme!r} "
            "(redis+cluster://, rediss+cluster://, or redis:// with cluster = true)"
        )
    location, _, query = rest.partition("?")
    netloc, _, path = location.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    nodes = [_node(part, shown) for part in _node_list(hosts, shown)]
    first = f"{node_scheme}://{userinfo + '@' if userinfo else ''}{hosts.split(',')[0]}"
    try:
        kwargs: dict[str, Any] = dict(parse_url(f"{first}/?{query}" if query else first))
    except ValueError as exc:  # a parameter's value of the wrong type
        raise RedisUrlError(f"Redis URL {shown!r}: {exc}") from None
    _check_db(path, kwargs.pop("db", None), shown)
    for name in ("host", "port", "path", "connection_class"):
        kwargs.pop(name, None)
    allowed = inspect.signature(aio_cluster.RedisCluster.__init__).parameters
    for name in kwargs:
        if name not in allowed:
            raise RedisUrlError(
                f"Redis URL {shown!r}: {name!r} is not an option of a Redis Cluster client"
            )
    if node_scheme == "rediss":
        kwargs["ssl"] = True
    return nodes, {**kwargs, **options}


def _node_list(hosts: str, shown: str) -> list[str]:
    parts = [p.strip() for p in hosts.split(",")]
    if not hosts.strip() or not any(parts):
        raise RedisUrlError(f"Redis URL {shown!r} names no cluster node (host:port,host:port)")
    if not all(parts):
        raise RedisUrlError(f"Redis URL {shown!r} has an empty entry in its node list {hosts!r}")
    return parts


def _node(part: str, shown: str) -> tuple[str, int]:
    if part.startswith("["):  # [IPv6]:port
        host, _, tail = part[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else tail
    else:
        host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
    if not host:
        raise RedisUrlError(f"Redis URL {shown!r}: node {part!r} has no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise RedisUrlError(
            f"Redis URL {shown!r}: node {part!r} has a bad port {port_text!r} (1 to 65535)"
        )
    return host, int(port_text)


def _check_db(path: str, db_option: Any, shown: str) -> None:
    for where, value in (("path", path.strip("/")), ("db parameter", db_option)):
        if value in (None, "", 0, "0"):
            continue
        raise RedisUrlError(
            f"Redis URL {shown!r}: {where} selects db {value!r}, but a Redis Cluster has only db 0"
        )


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to show and log."""
    scheme, sep, rest = url.partition("://")
    user, password = _userinfo(url)
    if not password:
        return url
    netloc_end = len(rest.split("/", 1)[0].split("?", 1)[0])
    host_part = rest[:netloc_end].rpartition("@")[2]
    return f"{scheme}{sep}{user}:***@{host_part}{rest[netloc_end:]}"


def _userinfo(url: str) -> tuple[str, str]:
    rest = url.partition("://")[2]
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    userinfo = netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    return user, password


class _Cluster(aio_cluster.RedisCluster):
    """redis-py's asyncio cluster client, with its outages said the way a single Redis says them.

    When no node answers, redis-py raises ``RedisClusterUnreachableError``, and while a
    dead master is not replaced ``ClusterDownError`` (a ``ResponseError``) or
    ``SlotNotCoveredError``: none is a ``ConnectionError``, so code that rides out a
    single Redis's outage (retry, spool) would crash on a cluster's. Commands,
    pipelines and transactions here raise :class:`ClusterUnreachable` (naming every
    node tried; redis-py names only the last) and :class:`ClusterDown` instead, each
    also of redis-py's class; a refused login is told apart.
    """

    async def initialize(self, *args: Any, **kwargs: Any) -> aio_cluster.RedisCluster:
        with self.outages_named(RedisClusterException):
            return await super().initialize(*args, **kwargs)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with self.outages_named():
            return await super().execute_command(*args, **kwargs)

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> aio_cluster.ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # redis-py's own refusal
        return _ClusterPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py does

    @contextlib.contextmanager
    def outages_named(
        self, caught: type[Exception] = RedisClusterUnreachableError
    ) -> Iterator[None]:
        try:
            yield
        except (ClusterUnreachable, ClusterLoginRefused, ClusterDown):
            raise
        except (ClusterDownError, SlotNotCoveredError) as exc:
            raise ClusterDown(
                f"the Redis Cluster cannot serve this now (a master is down and not yet "
                f"replaced): {exc}"
            ) from exc
        except caught as exc:
            nodes = dict.fromkeys(
                (n.host, int(n.port))
                for n in [*self.nodes_manager.startup_nodes.values(), *self.get_nodes()]
            )
            clear = _unreachable(list(nodes), exc)
            if clear is exc:
                raise
            raise clear from exc


class _ClusterPipeline(aio_cluster.ClusterPipeline):
    """The cluster pipeline (plain or transaction) of :class:`_Cluster`, outages named alike."""

    cluster_client: _Cluster

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        with self.cluster_client.outages_named():
            return await super().execute(raise_on_error, allow_redirections)

    async def watch(self, *names: Any) -> None:  # type: ignore[override]  # async, as redis-py
        with self.cluster_client.outages_named():
            await super().watch(*names)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        queued = super().execute_command(*args, **kwargs)
        # Between WATCH and MULTI a command runs at once: redis-py hands back its coroutine.
        return self._named(queued) if inspect.iscoroutine(queued) else queued

    async def _named(self, command: Awaitable[Any]) -> Any:
        with self.cluster_client.outages_named():
            return await command


def _unreachable(nodes: list[tuple[str, int]], exc: Exception) -> Exception:
    tried = ", ".join(f"{h}:{p}" for h, p in nodes)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, redis.AuthenticationError) or "HELLO must be called" in str(cause):
            return ClusterLoginRefused(
                f"the Redis Cluster refused the login (tried {tried}): no password or a wrong "
                f"one; check the URL's password_file: {cause}"
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, RedisClusterUnreachableError) or "cannot be connected" in str(exc):
        return ClusterUnreachable(f"no node of the Redis Cluster answered (tried {tried}): {exc}")
    return exc


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
