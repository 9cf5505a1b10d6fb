"""The demo survives restarts and any speed: real ``watchfloor up --headless --demo`` processes.

Restarted twice (once after more than a lost-heartbeat limit down), and at
``--demo-speed 4`` on a fresh directory, the board stays fresh: no lost-heartbeat
incident, no stale queue, no event the engine could not place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.watchfloor.test_up import api_get, stop, wait_for
from watchfloor.core.redis_server import free_port

pytestmark = pytest.mark.slow

WATCH_S = 40.0
"""Longer than the lost-heartbeat limit (30 s) after the board first fills."""


class Demo:
    def __init__(self, data_dir: Path, speed: float = 1.0) -> None:
        self.data_dir, self.speed = data_dir, speed
        self.api_port, self.collector_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.api_port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> subprocess.Popen[str]:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchfloor", "up", "--headless", "--demo",
             "--demo-speed", str(self.speed), "--data-dir", str(self.data_dir),
             "--api-port", str(self.api_port), "--collector-port", str(self.collector_port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={k: v for k, v in os.environ.items() if k != "WATCHFLOOR_REDIS_URL"},
        )  # fmt: skip
        return self.proc

    def token(self) -> str:
        assert self.proc is not None
        path = self.data_dir / "tokens" / "admin.token"
        wait_for(path.exists, 30, "admin token file", self.proc)
        return path.read_text().strip()

    def healthz(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + "/healthz", timeout=5) as response:
            return dict(json.loads(response.read()))


def watch_board(demo: Demo, watch_s: float = WATCH_S) -> list[dict[str, Any]]:
    """Watch the running demo for ``watch_s``: no lost heartbeat, fresh queues at the end."""
    assert demo.proc is not None
    token = demo.token()
    wait_for(lambda: api_get(demo.base, "/v1/queues", token)["queues"], 90, "queues", demo.proc)
    deadline = time.monotonic() + watch_s
    while time.monotonic() < deadline:
        incidents = api_get(demo.base, "/v1/incidents?state=all", token)["incidents"]
        lost = [(i["subject"], i["title"]) for i in incidents if i["rule"] == "outage.heartbeat"]
        assert lost == [], f"false lost heartbeats: {lost}"
        time.sleep(2)
    queues = api_get(demo.base, "/v1/queues", token)["queues"]
    stale = [(q["queue"], q["age_s"]) for q in queues if q["stale"]]
    assert stale == [], f"stale queues: {stale}"
    engine = demo.healthz()["engine"]
    assert engine.get("unplaced_total") == 0, engine
    return list(queues)


def run_once(demo: Demo, watch_s: float = WATCH_S) -> None:
    proc = demo.start()
    try:
        watch_board(demo, watch_s)
    finally:
        out, _ = stop(proc)
    assert proc.returncode == 0, out


@pytest.mark.timeout(420)
def test_the_demo_restarted_twice_keeps_a_fresh_board_and_no_false_lost_heartbeat(
    tmp_path: Path,
) -> None:
    demo = Demo(tmp_path / "wf")
    run_once(demo, watch_s=10)  # a first start only has to lay down history
    run_once(demo)  # restarted at once
    time.sleep(35)  # down for longer than a lost-heartbeat limit
    run_once(demo)


def test_the_demo_at_speed_4_on_a_fresh_directory_keeps_a_fresh_board(tmp_path: Path) -> None:
    run_once(Demo(tmp_path / "wf", speed=4.0))
