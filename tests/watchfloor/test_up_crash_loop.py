"""A collector that keeps dying under a real `watchfloor up --headless` is reported, not
slept through: a crash-loop ERROR with its last output in logs/up.log and on the terminal,
a problem on the API's /healthz, and a process:collector row down on the health board."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.watchfloor.test_up import children_of, cmdline, wait_for
from watchfloor.core.redis_server import free_port

pytestmark = pytest.mark.slow


def collector_pid(up: subprocess.Popen[str]) -> int | None:
    found = [p for p in children_of(up.pid) if " collector " in cmdline(p) + " "]
    return found[0] if found else None


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return json.loads(response.read())


def test_a_collector_crash_loop_is_reported_on_the_terminal_in_the_log_and_on_healthz(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "wf"
    api_port, collector_port = free_port(), free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "watchfloor", "up", "--headless", "--data-dir", str(data_dir),
         "--api-port", str(api_port), "--collector-port", str(collector_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if k != "WATCHFLOOR_REDIS_URL"},
    )  # fmt: skip
    try:
        # up writes its pid file once it saw every service ready (before, a death is fatal)
        wait_for((data_dir / "run" / "up.pid").exists, 90, "the stack", up)
        killed: list[int] = []
        began = time.monotonic()
        while len(killed) < 5:  # every new collector dies at once: 1, 2, 4, 8 s delays
            pid = wait_for(
                lambda: (p := collector_pid(up)) not in killed and p, 40, "a collector", up
            )
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        problem = wait_for(
            lambda: [p for p in healthz(api_port)["problems"] if "collector crash loop" in p],
            20,
            "the crash loop on /healthz",
            up,
        )
        took = time.monotonic() - began
        assert problem[0].startswith("collector crash loop: 5 exits, last code -9"), problem
        row = next(
            r for r in _health_rows(data_dir, api_port) if r["subject"] == "process:collector"
        )
        assert row["status"] == "down"
        log = (data_dir / "logs" / "up.log").read_text()
        assert "ERROR watchfloor.supervisor: collector is in a crash loop: 5 exits" in log
        assert "last output of collector:" in log
    finally:
        up.send_signal(signal.SIGTERM)
        out, _ = up.communicate(timeout=60)
    assert "collector is in a crash loop: 5 exits within 120 s (last code -9)" in out, out
    assert took < 60, f"the fifth crash was reported {took:.0f}s after the first"


def _health_rows(data_dir: Path, api_port: int) -> list[dict]:
    token = (data_dir / "tokens" / "admin.token").read_text().strip()
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/v1/health", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        rows: list[dict] = json.loads(response.read())["health"]
        return rows
