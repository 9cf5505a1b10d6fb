"""The collector as a service and a command: serve, inflate gzip under a cap, stop cleanly."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.collector.conftest import ADMIN, StartCollector, all_events, make_config
from watchfloor.collector.service import Collector
from watchfloor.collector.simulator.runner import live_start_ts, run_live
from watchfloor.collector.simulator.scenarios import generate
from watchfloor.core.redis_server import free_port

WATCHFLOOR = [sys.executable, "-c", "from watchfloor.cli import main; raise SystemExit(main())"]
HEADERS = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}


async def post(url: str, body: bytes, **headers: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/events", data=body, headers={**HEADERS, **headers}) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("gzip batch", gzip.compress(json.dumps([{"type": "heartbeat", "ts": time.time(),
                                                  "source": "acd-1"}]).encode()), 202),
        ("gzip bomb", gzip.compress(b" " * (64 * 1024 * 1024)), 413),
        ("gzip cut short", gzip.compress(b"[]" * 1000)[:-10], 400),
    ],
    ids=["gzip batch", "gzip bomb", "gzip cut short"],  # the bodies hold the time: not ids
)  # fmt: skip
async def test_the_service_inflates_gzip_itself_under_the_size_cap(
    redis_url: str, data_dir: Path, name: str, body: bytes, status: int
) -> None:
    config = make_config(data_dir)
    config = dataclasses.replace(config, collector=dataclasses.replace(config.collector, port=0))
    service, stop = Collector(config, redis_url), asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.ready.wait(), 10)
    got, answer = await post(
        f"http://127.0.0.1:{service.port}", body, **{"Content-Encoding": "gzip"}
    )
    stop.set()
    await asyncio.wait_for(running, 10)
    assert got == status, (name, answer)


async def test_simulate_live_delivers_every_event_of_a_scenario(
    start_collector: StartCollector, any_redis_url: str
) -> None:
    collector = await start_collector(any_redis_url)  # on a single Redis and on a cluster
    anchor = time.time()  # the centre's casework follows the hour of day: plan the same hours
    summary = await run_live(
        "bulk-export", collector.url, collector.token, speed=2000, seed=4, anchor=anchor
    )
    start_ts = live_start_ts("bulk-export", anchor)
    planned = sum(
        len(s.events)
        for s in generate("bulk-export", seed=4, start_ts=start_ts, run_tag=f"{int(anchor)}")
    )
    assert summary.events == planned and summary.accepted == planned
    assert len(await all_events(collector.redis)) == planned


def test_the_collector_command_serves_and_stops_on_sigterm(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "WATCHFLOOR_ADMIN_TOKEN": ADMIN}
    command = [*WATCHFLOOR, "collector", "--data-dir", str(tmp_path),
               "--redis", redis_url, "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        status = asyncio.run(_post_when_up(f"http://127.0.0.1:{port}"))
        assert status == 202
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_the_collector_command_says_when_its_port_is_taken(redis_url: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [*WATCHFLOOR, "collector", "--data-dir",
                   str(tmp_path), "--redis", redis_url, "--port", str(port)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


async def _post_when_up(url: str) -> int:
    body = json.dumps([{"type": "heartbeat", "ts": time.time(), "source": "acd-1"}]).encode()
    deadline = time.monotonic() + 15
    while True:
        try:
            return (await post(url, body))[0]
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
