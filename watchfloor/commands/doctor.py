"""`watchfloor doctor`: check that everything `up` needs works, and say what does not.

Each check prints one line, ``ok``, ``warn`` or ``FAIL`` with the reason and the
fix. Any FAIL exits 1. With no Redis URL configured, the embedded Redis is
really started (locked down, in a temporary directory) and stopped again;
beside a running stack, the stack's own Redis is checked instead and the ports
it serves are recognised as its own, not reported as taken.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from watchfloor.commands.common import add_config_options, config_from_args
from watchfloor.core import keys
from watchfloor.core.config import Config, ConfigError
from watchfloor.core.redis_client import RedisSecretError
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.redis_server import (
    RedisServerError,
    check_reachable,
    embedded_for,
    find_redis_server,
    server_version,
)
from watchfloor.core.stack_lock import Holder, read_holder
from watchfloor.run_files import stack_addresses


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok, warn, FAIL
    detail: str


def register(sub: Any) -> None:
    parser = sub.add_parser("doctor", help="check that everything `up` needs works")
    add_config_options(parser)
    parser.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"FAIL config: {exc}")
        return 1
    checks = [Check("config", "ok", "valid")]
    for check in (
        check_data_dir,
        check_redis,
        check_stream,
        check_tokens,
        check_keys,
        check_ports,
    ):
        checks.extend(check(config))
    for c in checks:
        print(f"{c.status:<4} {c.name}: {c.detail}")
    failed = [c for c in checks if c.status == "FAIL"]
    print(
        "doctor: "
        + (
            "everything `watchfloor up` needs works"
            if not failed
            else f"{len(failed)} problem(s): " + ", ".join(c.name for c in failed)
        )
    )
    return 1 if failed else 0


def check_data_dir(config: Config) -> list[Check]:
    path = config.data_path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return [
            Check(
                "data dir",
                "FAIL",
                f"{path} is not writable ({exc.strerror}); choose another with --data-dir",
            )
        ]
    return [Check("data dir", "ok", f"{path.resolve()} is writable")]


def running_stack(config: Config) -> Holder | None:
    """The live stack that owns this data directory's embedded Redis, if any."""
    if config.redis.url:
        return None
    holder = read_holder(config.path("redis"))
    return holder if holder is not None and holder.long_lived else None


def redis_in_use(config: Config) -> str | None:
    """The URL of the Redis the stack uses now: configured, or the running stack's."""
    stack = running_stack(config)
    return config.redis.url or (stack.url if stack else None)


def check_redis(config: Config) -> list[Check]:
    url, stack = redis_in_use(config), running_stack(config)
    if url:
        try:
            version = asyncio.run(check_reachable(url))
        except (RedisServerError, RedisSecretError) as exc:
            return [Check("redis", "FAIL", str(exc))]
        whose = f"the running stack's Redis (pid {stack.pid}) " if stack else ""
        return [Check("redis", "ok", f"{whose}{url} answers, Redis {version}")]
    try:
        binary = find_redis_server(config.redis.embedded_binary)
        version = ".".join(map(str, server_version(binary)))
        with tempfile.TemporaryDirectory(prefix="wf-doctor-") as tmp:
            server = embedded_for(tmp, binary=str(binary), fsync=config.redis.appendfsync)
            with server:
                asyncio.run(check_reachable(server.url))
    except RedisServerError as exc:
        return [Check("redis", "FAIL", f"embedded Redis: {exc}")]
    return [
        Check(
            "redis",
            "ok",
            f"embedded Redis {version} from {binary} starts and stops "
            f"(unix socket, password, appendfsync {config.redis.appendfsync})",
        )
    ]


def check_stream(config: Config) -> list[Check]:
    url = redis_in_use(config)
    if not url:
        return [Check("events stream", "ok", "created by the first `up` on the embedded Redis")]
    return asyncio.run(_stream_state(url, config))


def check_tokens(config: Config) -> list[Check]:
    """Token records in Redis that Watchfloor did not write (no valid seal)."""
    url = redis_in_use(config)
    if not url:
        return []
    from watchfloor.security.tokens import TokenStore, load_seal

    async def forged() -> list[dict[str, object]]:
        client = redis_connect(url, cluster=config.redis.cluster, socket_connect_timeout=3)
        try:
            store = TokenStore(client, seal=load_seal(config.data_dir, create=False))
            return await store.forged_records()
        finally:
            await client.aclose()

    try:
        rows = asyncio.run(forged())
    except (OSError, RedisSecretError, RedisError) as exc:  # check_redis says why
        return [Check("tokens", "warn", f"not checked: {exc}")]
    if rows:
        names = ", ".join(f"{r['name']} ({r['role']}, id {r['id']})" for r in rows)
        return [
            Check(
                "tokens",
                "FAIL",
                f"{len(rows)} token record(s) in Redis were not created by Watchfloor: "
                f"{names}; they are refused: find who writes to Redis, then delete them",
            )
        ]
    return [Check("tokens", "ok", "every token record carries a valid seal")]


async def _stream_state(url: str, config: Config) -> list[Check]:
    """The shard count Redis holds against the config's, then every shard's stream and group."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    shards = config.redis.shards
    client = redis_connect(url, cluster=config.redis.cluster, socket_connect_timeout=3)
    try:
        recorded = await client.get(keys.SHARDS)
        async with client.pipeline(transaction=False) as pipe:
            for n in range(shards):
                pipe.xinfo_groups(keys.events_shard(n))
            replies = await pipe.execute(raise_on_error=False)
    except (ConnectionError, OSError, RedisConnectionError):
        return [Check("events stream", "warn", "not checked: Redis is unreachable")]
    finally:
        await client.aclose()
    return [_shard_count(recorded, shards), _shard_streams(replies)]


def _shard_count(recorded: Any, shards: int) -> Check:
    if recorded is None:
        first = "recorded in Redis by the first collector or monitor start"
        return Check("events shards", "ok", f"{shards} ({first})")
    try:
        have = int(recorded)
    except ValueError:
        return Check("events shards", "FAIL", f"{keys.SHARDS} holds {recorded!r}, not a count")
    if have != shards:
        return Check(
            "events shards",
            "FAIL",
            f"Redis was set up with {have} events shards but redis.shards says {shards}: "
            f"set redis.shards = {have} (the collector and the monitor refuse to start)",
        )
    return Check("events shards", "ok", f"{shards}, as recorded in Redis")


def _shard_streams(replies: list[Any]) -> Check:
    """One line for every shard's stream (``XINFO GROUPS`` replies, in shard order)."""
    missing, groupless = [], []
    for n, reply in enumerate(replies):
        if isinstance(reply, Exception):  # no such key
            missing.append(keys.events_shard(n))
            continue
        names = {g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in reply}
        if keys.EVENTS_GROUP not in names:
            groupless.append(keys.events_shard(n))
    last = keys.events_shard(len(replies) - 1)
    every = f"{len(replies)} shard streams {keys.events_shard(0)} .. {last}"
    problems = []
    if missing:
        problems.append(f"{len(missing)} do not exist yet ({_few(missing)})")
    if groupless:
        problems.append(f"{len(groupless)} lack group {keys.EVENTS_GROUP!r} ({_few(groupless)})")
    if problems:
        detail = "; ".join(problems)
        return Check(
            "events stream", "warn", f"of {every}: {detail} (the first monitor start creates them)"
        )
    return Check("events stream", "ok", f"{every}, each with group {keys.EVENTS_GROUP!r}")


def _few(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_keys(config: Config) -> list[Check]:
    folder = config.path("keys")
    if not folder.exists():
        return [
            Check(
                "keys",
                "warn",
                f"{folder} has no keys yet: `watchfloor keys init` "
                "(or the first `watchfloor up`) creates them",
            )
        ]
    loose = [
        p.name
        for p in folder.iterdir()
        if p.is_file() and p.stat().st_mode & 0o077 and not p.name.endswith(".pub.pem")
    ]
    if loose:
        return [
            Check(
                "keys",
                "FAIL",
                f"readable by others: {', '.join(sorted(loose))} (chmod 600 {folder}/*)",
            )
        ]
    return [Check("keys", "ok", f"{len(list(folder.iterdir()))} files in {folder}, private")]


def check_ports(config: Config) -> list[Check]:
    stack = running_stack(config)
    # A running `up` may listen elsewhere than the config says (--collector-port).
    served = stack_addresses(config) if stack is not None else {}
    collector = served.get("collector", (config.collector.host, config.collector.port))
    api = served.get("api", (config.api.host, config.api.port))
    return [
        _port_check(
            "collector port", *collector, "WATCHFLOOR_COLLECTOR_PORT or --collector-port", stack
        ),
        _port_check("api port", *api, "WATCHFLOOR_API_PORT or --api-port", stack),
    ]


def _port_check(name: str, host: str, port: int, how: str, stack: Holder | None) -> Check:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.bind((host, port))
    except OSError as exc:
        if stack is not None and _serves_healthz(host, port):
            return Check(
                name, "ok", f"{host}:{port} is served by the running stack (pid {stack.pid})"
            )
        return Check(
            name, "FAIL", f"{host}:{port} is taken ({exc.strerror}); choose another with {how}"
        )
    return Check(name, "ok", f"{host}:{port} is free")


def _serves_healthz(host: str, port: int) -> bool:
    """Whether a Watchfloor service answers there (its /healthz, whatever its verdict)."""
    where = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{where}:{port}/healthz", timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 503  # a service with problems still says so on /healthz
    except (urllib.error.URLError, OSError):
        return False
