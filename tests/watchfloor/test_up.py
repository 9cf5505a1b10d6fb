"""`watchfloor up --headless --demo` as a new user runs it: a surge and its run appear,
SIGTERM stops everything with nothing left running, the audit log verifies, and a second
`up` resumes with the first one's incidents."""

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

from watchfloor.core.redis_server import free_port

pytestmark = pytest.mark.slow


def api_get(base: str, path: str, token: str) -> dict:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            child = int(entry.name)
            found += [child, *children_of(child)]
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def start_up(data_dir: Path, api_port: int, collector_port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watchfloor",
            "up",
            "--headless",
            "--demo",
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(api_port),
            "--collector-port",
            str(collector_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "WATCHFLOOR_REDIS_URL"},
    )


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen[str]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"up exited early ({proc.returncode}) while waiting for {what}")
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout}s")


def stop(proc: subprocess.Popen[str]) -> tuple[str, list[int]]:
    descendants = children_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out, descendants


def test_up_demo_shows_a_surge_and_its_run_then_stops_cleanly_and_resumes(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "wf"
    api_port, collector_port = free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    proc = start_up(data_dir, api_port, collector_port)
    try:
        token_file = data_dir / "tokens" / "admin.token"
        wait_for(token_file.exists, 30, "admin token file", proc)
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()

        def surge_with_run() -> dict | None:
            incidents = api_get(base, "/v1/incidents?state=all", token)["incidents"]
            surges = [i for i in incidents if i["kind"] == "surge" and i.get("playbook_run")]
            return surges[0] if surges else None

        surge = wait_for(surge_with_run, 90, "surge incident with a playbook run", proc)
        run = api_get(base, f"/v1/runs/{surge['playbook_run']}", token)
        assert run["steps"] and run["state"] == "active"
        # the run is the surge's own, or the one already working that queue (one run a problem)
        lead = api_get(base, f"/v1/incidents/{run['incident']}", token)
        assert lead["subject"] == surge["subject"]
        queues = api_get(base, "/v1/queues", token)["queues"]
        assert any(q["queue"] == surge["subject"] for q in queues)

        # a monitor killed mid-stream is started again and serves the same incidents
        monitor = next(pid for pid in children_of(proc.pid) if "monitor" in cmdline(pid))
        os.kill(monitor, signal.SIGKILL)
        wait_for(
            lambda: any("monitor" in cmdline(p) and p != monitor for p in children_of(proc.pid)),
            30,
            "a new monitor",
            proc,
        )
        again = wait_for(
            lambda: api_get(base, f"/v1/incidents/{surge['id']}", token),
            30,
            "the API after the restart",
            proc,
        )
        assert again["id"] == surge["id"]
    finally:
        out, descendants = stop(proc)
    assert proc.returncode == 0, out
    assert descendants, "up started no child process"
    time.sleep(0.5)
    alive = [pid for pid in descendants if Path(f"/proc/{pid}").exists()]
    assert alive == [], f"left running: {alive}\n{out}"

    verify = subprocess.run(
        [sys.executable, "-m", "watchfloor", "audit", "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    again = start_up(data_dir, api_port, collector_port)
    try:
        incidents = wait_for(
            lambda: api_get(base, "/v1/incidents?state=all", token)["incidents"],
            60,
            "incidents after a restart",
            again,
        )
        assert surge["id"] in {i["id"] for i in incidents}
    finally:
        out, _ = stop(again)
    assert again.returncode == 0, out
