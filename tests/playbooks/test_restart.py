"""Timers survive the death of the process running them: kill the runner's process
between a step's deadline and its escalation, restart it, and exactly one escalation
happens (no missed one, no doubled one)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.playbooks.helpers import Receiver, wait_for
from watchfloor.core import keys
from watchfloor.core.config import load_config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner
from watchfloor.security.audit import AuditLog

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = """
id = "restart-check"
title = { zh = "重启检查", en = "Restart check" }
[start]
manual_only = true
[[steps]]
id = "confirm"
title = "Confirm"
owner = "oncall"
deadline = "1s"
deadline_from = "start"
escalation = { after = "3s", repeat = 1, notify = ["duty-group"], roles = ["duty_manager"] }
"""


def spawn_worker(redis_url: str, config: Path, library: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watchfloor.playbook_worker",
            "--redis",
            redis_url,
            "--config",
            str(config),
            "--library",
            str(library),
            "--poll",
            "0.1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


async def step_of(redis: aioredis.Redis, run_id: str) -> dict[str, Any]:
    runner = PlaybookRunner(redis, IncidentStore(redis), None, Library([]))
    return (await runner.get(run_id))["steps"][0]


@pytest.mark.slow
async def test_killed_runner_escalates_exactly_once_after_restart(
    redis_url: str,
    redis_client: aioredis.Redis,
    serve_app: Any,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    rec = Receiver()
    base = await serve_app(rec.app)
    library = tmp_path / "library"
    library.mkdir()
    (library / "restart-check.toml").write_text(PLAYBOOK, encoding="utf-8")
    config = tmp_path / "watchfloor.toml"
    config.write_text(
        f'data_dir = "{data_dir}"\n[[webhooks]]\nname = "duty-group"\n'
        f'kind = "json"\nurl = "{base}/json"\n',
        encoding="utf-8",
    )
    incidents = IncidentStore(redis_client)
    incident = await incidents.create_manual(
        title="Order API down", severity="critical", subject="order-api", actor="li.wei"
    )
    runner = PlaybookRunner(redis_client, incidents, None, Library.load(library))
    run = await runner.start("restart-check", incident.id, actor="li.wei", role="duty_manager")
    escalation_due = run["started_at"] + 1 + 3

    worker = spawn_worker(redis_url, config, library)
    try:

        async def late() -> bool:
            return (await step_of(redis_client, run["id"]))["state"] == "late"

        await wait_for(late, timeout=5)
        os.kill(worker.pid, signal.SIGKILL)  # between the deadline and the escalation
        worker.wait(5)
        assert time.time() < escalation_due, "the test machine was too slow to kill in time"
        assert (await step_of(redis_client, run["id"]))["escalations"] == 0
        await asyncio.sleep(max(0.0, escalation_due - time.time()) + 0.5)
        assert rec.received == [], "nobody escalates while the runner is dead"

        worker = spawn_worker(redis_url, config, library)

        async def escalated() -> bool:
            step = await step_of(redis_client, run["id"])
            return step["escalations"] == 1 and bool(step["notifications"])

        await wait_for(escalated, timeout=5)
        await asyncio.sleep(1.0)  # time for a doubled escalation to show, if there were one

        async def no_timers_left() -> bool:  # a claim the killed process held expires (lease)
            return not await redis_client.zrange(keys.RUN_TIMERS, 0, -1)

        await wait_for(no_timers_left, timeout=8)
    finally:
        worker.terminate()
        worker.wait(5)
    step = await step_of(redis_client, run["id"])
    assert step["state"] == "escalated" and step["escalations"] == 1
    assert len(rec.received) == 1 and rec.received[0]["body"]["purpose"] == "escalation"
    assert rec.received[0]["key"] == f"{run['id']}:confirm:esc:1:duty-group"
    records = await AuditLog(redis_client).read()
    effects = {r["action"]: set() for r in records}
    for r in records:
        effects[r["action"]].add(r["details"]["fx"])
    assert len(effects["run.step.escalate"]) == 1 and len(effects["run.step.late"]) == 1
    assert load_config(config).webhooks[0].name == "duty-group"
