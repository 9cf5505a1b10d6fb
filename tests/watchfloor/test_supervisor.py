"""The supervisor with real child processes that crash: the restart delay falls back to
1 s after a healthy run, and a crash loop is reported (log, terminal hook, Redis status
for /healthz, health-board row) with the child's last output, then cleared on recovery."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
import redis as sync_redis

from watchfloor.api.app import create_app
from watchfloor.core import keys
from watchfloor.core.config import Config
from watchfloor.core.redis_client import connect
from watchfloor.supervisor import Child, RestartPolicy, Supervisor
from watchfloor.supervisor_status import StatusPublisher

# A child that counts its runs in a file, records when each started, and dies at once,
# except on the runs listed in HEALTHY (which run for HEALTHY_S seconds first).
SCRIPT = """
import pathlib, sys, time
runs = pathlib.Path(sys.argv[1]); n = len(runs.read_text().splitlines()) if runs.exists() else 0
with runs.open("a") as f: f.write(f"{{time.monotonic()}}\\n")
if n in {healthy}: time.sleep({healthy_s})
print(f"run {{n}}: cannot open the order-api socket (errno 13)", file=sys.stderr, flush=True)
sys.exit(3)
"""


def crashing_child(tmp_path: Path, *, healthy: set[int], healthy_s: float) -> Child:
    code = SCRIPT.format(healthy=healthy or "set()", healthy_s=healthy_s)
    runs = tmp_path / "runs.txt"
    return Child("flaky", [sys.executable, "-c", code, str(runs)], tmp_path / "flaky.log")


def starts(tmp_path: Path) -> list[float]:
    path = tmp_path / "runs.txt"
    return [float(x) for x in path.read_text().split()] if path.exists() else []


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout}s")


def test_the_restart_delay_falls_back_to_one_second_after_a_healthy_run(tmp_path: Path) -> None:
    # runs 0-2 crash at once (delays 1, 2, 4 s), run 3 is healthy for 3 s, then crashes.
    child = crashing_child(tmp_path, healthy={3}, healthy_s=3.0)
    policy = RestartPolicy(max_delay_s=8.0, healthy_after_s=2.0, loop_exits=100)
    supervisor = Supervisor([child], policy=policy, poll_s=0.1)
    supervisor.start()
    try:
        times = wait_until(lambda: (t := starts(tmp_path)) and len(t) >= 5 and t, 40, "5th run")
    finally:
        supervisor.stop()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # while it keeps crashing the delay doubles ...
    # (margins: a loaded machine starts a Python child late, never early)
    assert 0.9 <= gaps[0] < 2.5 and 1.9 <= gaps[1] < 3.8 and 3.9 <= gaps[2] < 6.0, gaps
    # ... and after 3 s healthy it is back to 1 s (it was the 8 s maximum before)
    assert 0.9 <= gaps[3] - 3.0 < 2.5, gaps


async def test_a_crash_loop_is_reported_published_and_cleared_on_recovery(
    tmp_path: Path, redis_url: str, serve_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # five quick crashes (a loop), then a run that stays up: recovery.
    child = crashing_child(tmp_path, healthy={5}, healthy_s=60.0)
    policy = RestartPolicy(max_delay_s=0.3, healthy_after_s=2.0, loop_exits=5, loop_window_s=120)
    reports: list[str] = []
    publisher = StatusPublisher(redis_url)
    supervisor = Supervisor(
        [child], policy=policy, on_report=reports.append, publish=publisher, poll_s=0.1
    )
    client = connect(redis_url)
    base = await serve_app(create_app(Config(data_dir=str(tmp_path / "data")), client))
    caplog.set_level(logging.WARNING, logger="watchfloor.supervisor")
    began = time.monotonic()
    supervisor.start()
    try:
        await _until(lambda: reports, 20, "a crash-loop report")
        reported_after = time.monotonic() - began
        assert "flaky is in a crash loop: 5 exits within 120 s (last code 3)" in reports[0]
        assert "run 4: cannot open the order-api socket (errno 13)" in reports[0]
        assert any(
            r.levelno == logging.ERROR and "crash loop" in r.getMessage() for r in caplog.records
        )
        assert supervisor.status()["children"]["flaky"]["state"] == "crash-loop"
        health = await _until(lambda: _healthz(base), 10, "healthz with the crash loop")
        assert health["status"] == "degraded"
        assert any(p.startswith("flaky crash loop: 5 exits") for p in health["problems"])
        assert _health_row(redis_url)["status"] == "down"

        # the sixth run stays up: after healthy_after_s the loop is over, and said so
        await _until(lambda: len(reports) >= 2, 15, "a recovery report")
        assert "flaky recovered" in reports[1]
        assert supervisor.status()["children"]["flaky"]["state"] == "running"
        await asyncio.sleep(0.3)
        assert not [p for p in (await _healthz_any(base))["problems"] if "flaky" in p]
        assert _health_row(redis_url)["status"] == "up"
    finally:
        supervisor.stop()
        publisher.close()
        await client.aclose()
    assert reported_after < 10, f"five 0.3 s restarts took {reported_after:.1f}s to report"
    assert _published(redis_url) is None  # closing removes what only a running `up` may claim


async def _until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout}s")


async def _healthz_any(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(base + "/healthz") as response:
        body: dict[str, Any] = await response.json()
        return body


async def _healthz(base: str) -> dict[str, Any] | None:
    body = await _healthz_any(base)
    return body if any("crash loop" in p for p in body["problems"]) else None


def _health_row(url: str) -> dict[str, Any]:
    client = sync_redis.Redis.from_url(url)
    try:
        raw = client.hget(keys.HEALTH, "process:flaky")
    finally:
        client.close()
    assert raw is not None, "no health-board row for the crash-looping child"
    row: dict[str, Any] = msgpack.unpackb(raw, raw=False)
    return row


def _published(url: str) -> bytes | None:
    client = sync_redis.Redis.from_url(url)
    try:
        value = client.get(keys.SUPERVISOR)
        return value if isinstance(value, bytes) else None
    finally:
        client.close()
