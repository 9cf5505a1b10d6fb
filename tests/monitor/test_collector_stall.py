"""A collector that stalls (SIGSTOP) with events in flight does not make them late for good.

Real processes: ``watchfloor monitor`` and ``watchfloor collector`` on the test's
Redis. While the collector is stopped, a producer posts a leak message and three
failing probes (the request waits in the socket); the monitor's idle clock goes
on. After SIGCONT the collector writes them with their true (now old) times: the
leak and the outage must still open.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from tests.monitor.processes import (
    ADMIN,
    CollectorProcess,
    MonitorProcess,
    open_fingerprints,
    wait_for,
)
from watchfloor.core import engine_status

pytestmark = pytest.mark.slow

ID_TEXT = "您的身份证号是11010519491231002X，已登记"


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[tuple[MonitorProcess, CollectorProcess]]:
    (tmp_path / "watchfloor.toml").write_text("[collector]\nheartbeat_interval_s = 1.0\n")
    monitor = MonitorProcess(redis_url, tmp_path)
    collector = CollectorProcess(redis_url, tmp_path)
    yield monitor, collector
    collector.stop()
    monitor.stop()


def post(url: str, events: list[dict[str, Any]], answers: list[int]) -> None:
    request = urllib.request.Request(
        url + "/v1/events",
        data=json.dumps(events).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answers.append(response.status)


def probes(now: float, status: str, n: int, step_s: float) -> list[dict[str, Any]]:
    return [
        {"type": "health", "ts": now + i * step_s, "source": "probe-1", "component": "crm",
         "status": status}
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("stall_s", [8.0, 15.0])
def test_a_leak_and_failing_probes_in_flight_through_a_stalled_collector_still_open(
    stack: tuple[MonitorProcess, CollectorProcess], redis_url: str, stall_s: float
) -> None:
    monitor, collector = stack
    client = sync_redis.Redis.from_url(redis_url)
    collector.start()  # first: it creates the field keyring the monitor loads at start
    monitor.start()
    warm: list[int] = []
    post(collector.url, probes(time.time() - 60, "up", 6, 10.0), warm)
    assert warm == [202]
    wait_for(
        lambda: float(engine_status.read_sync(client).get("watermark") or 0) > time.time() - 10,
        20,
        "the monitor's clock to reach the present",
    )

    collector.signal(signal.SIGSTOP)
    now = time.time()
    events = [
        {"type": "agent.message", "ts": now, "source": "im", "agent_id": "a-1",
         "conversation_id": "c-1", "channel": "chat", "direction": "to_customer",
         "text": ID_TEXT},
        *probes(now, "down", 3, 0.2),
    ]  # fmt: skip
    answers: list[int] = []
    sender = threading.Thread(target=post, args=(collector.url, events, answers))
    sender.start()
    time.sleep(stall_s)
    collector.signal(signal.SIGCONT)
    sender.join(60)
    assert answers == [202]

    wanted = {"leak.pii_in_message|a-1", "outage.component|crm"}
    wait_for(lambda: wanted <= open_fingerprints(client), 20, f"incidents {wanted}")
    status = engine_status.read_sync(client)
    assert int(status["unplaced_total"]) == 0
