"""`watchfloor doctor`: check that everything `up` needs works, and say what does not.

Each check prints one line, ``ok``, ``warn`` or ``FAIL`` with the reason and the
fix. Any FAIL exits 1. With no Redis URL configured, the embedded Redis is
really started on a free port and stopped again.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
from dataclasses import dataclass
from typing import Any

from core import keys
from core.config import Config, ConfigError
from core.redis_client import connect as redis_connect
from core.redis_server import (
    EmbeddedRedis,
    RedisServerError,
    check_reachable,
    find_redis_server,
    server_version,
)
from watchfloor.commands.common import add_config_options, config_from_args


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
    for check in (check_data_dir, check_redis, check_stream, check_keys, check_ports):
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


def check_redis(config: Config) -> list[Check]:
    if config.redis.url:
        try:
            version = asyncio.run(check_reachable(config.redis.url))
        except RedisServerError as exc:
            return [Check("redis", "FAIL", str(exc))]
        return [Check("redis", "ok", f"{config.redis.url} answers, Redis {version}")]
    try:
        binary = find_redis_server(config.redis.embedded_binary)
        version = ".".join(map(str, server_version(binary)))
        with (
            tempfile.TemporaryDirectory() as tmp,
            EmbeddedRedis(tmp, binary=str(binary), persistent=False) as server,
        ):
            asyncio.run(check_reachable(server.url))
    except RedisServerError as exc:
        return [Check("redis", "FAIL", f"embedded Redis: {exc}")]
    return [Check("redis", "ok", f"embedded Redis {version} from {binary} starts and stops")]


def check_stream(config: Config) -> list[Check]:
    if not config.redis.url:
        return [Check("events stream", "ok", "created by the first `up` on the embedded Redis")]
    return [asyncio.run(_stream_state(config.redis.url))]


async def _stream_state(url: str) -> Check:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError

    client = redis_connect(url, socket_connect_timeout=3)
    try:
        groups = await client.xinfo_groups(keys.EVENTS)
    except (ConnectionError, OSError, RedisConnectionError):
        return Check("events stream", "warn", "not checked: Redis is unreachable")
    except RedisError:
        return Check(
            "events stream",
            "warn",
            f"{keys.EVENTS} does not exist yet (the first monitor start creates it)",
        )
    finally:
        await client.aclose()
    names = {g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups}
    if keys.EVENTS_GROUP not in names:
        return Check(
            "events stream",
            "warn",
            f"group {keys.EVENTS_GROUP!r} missing (the first monitor start creates it)",
        )
    return Check("events stream", "ok", f"{keys.EVENTS} with group {keys.EVENTS_GROUP!r}")


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
    return [
        _port_check(
            "collector port",
            config.collector.host,
            config.collector.port,
            "WATCHFLOOR_COLLECTOR_PORT or --collector-port",
        ),
        _port_check(
            "api port", config.api.host, config.api.port, "WATCHFLOOR_API_PORT or --api-port"
        ),
    ]


def _port_check(name: str, host: str, port: int, how: str) -> Check:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.bind((host, port))
    except OSError as exc:
        return Check(
            name, "FAIL", f"{host}:{port} is taken ({exc.strerror}); choose another with {how}"
        )
    return Check(name, "ok", f"{host}:{port} is free")
