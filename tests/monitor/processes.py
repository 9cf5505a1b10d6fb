"""Real ``watchfloor monitor`` and ``watchfloor collector`` processes for the engine-time tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis as sync_redis

from watchfloor.core import keys
from watchfloor.core.bus import BATCH_FIELD
from watchfloor.core.events import Event, encode_batch
from watchfloor.core.redis_server import free_port
from watchfloor.core.shards import split

ADMIN = "test-admin-token-0123456789"


class ServiceProcess:
    """A ``watchfloor <command>`` subprocess on the test's Redis, serving on a free port."""

    command = "monitor"
    port_env = "WATCHFLOOR_API_PORT"

    def __init__(self, redis_url: str, data_dir: Path) -> None:
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, self.port_env: str(self.port), "WATCHFLOOR_ADMIN_TOKEN": ADMIN}
        log = (self.data_dir / f"{self.command}.out").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchfloor", self.command, "--redis", self.redis_url,
             "--data-dir", str(self.data_dir)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(lambda: self.get("/healthz") is not None, 60, f"the {self.command}'s /healthz")

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as response:
                body = response.read().decode()
        except OSError:
            return None
        return json.loads(body) if path == "/healthz" else body

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class MonitorProcess(ServiceProcess):
    command = "monitor"
    port_env = "WATCHFLOOR_API_PORT"


class CollectorProcess(ServiceProcess):
    command = "collector"
    port_env = "WATCHFLOOR_COLLECTOR_PORT"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"no {what} within {timeout:.0f}s")


def publish(client: sync_redis.Redis, events: list[Event], shards: int = 16) -> None:
    """Write one batch, split by shard into the events streams, as a collector does."""
    for shard, indexes in split(events, shards).items():
        batch = encode_batch([events[i] for i in indexes])
        client.xadd(keys.events_shard(shard), {BATCH_FIELD: batch})


def open_fingerprints(client: sync_redis.Redis) -> set[str]:
    """``rule|subject`` of every open incident."""
    return {fp.decode() for fp in client.hkeys(keys.INCIDENT_FINGERPRINTS)}
