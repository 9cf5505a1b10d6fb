"""An escalation deadline that passes while its worker is dead: one escalation, one delivery.

Two real monitor workers (``watchfloor monitor --worker-id w1|w2 --no-api``, leases of
3 s) on the test's Redis, a playbook library of the test's own and a webhook to a real
aiohttp receiver on 127.0.0.1. A leaking message opens an incident and its playbook
starts; the worker holding the playbook timers (``keys.task_lease("timers")``) is
SIGKILLed before the step's deadline. The other takes the timers lease once it expires,
marks the step late and escalates: the receiver must get exactly one escalation.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.monitor.processes import publish
from tests.playbooks.helpers import Receiver
from tests.reliability.processes import (
    alive,
    all_incidents,
    init_data_dir,
    processed_events,
    registered,
    run_of_incident,
    stored_ids,
    task_holder,
    until,
)
from tests.reliability.stack import ID_TEXT, Counts, WorkerProcess
from watchfloor.core.events import AgentMessage
from watchfloor.core.incidents import IncidentStore
from watchfloor.core.redis_client import connect_sync
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner

pytestmark = pytest.mark.slow

DEADLINE_S, ESCALATE_AFTER_S = 6, 2
ROLES = 'roles = ["duty_manager"]'
PLAYBOOK = f"""
id = "leak-takeover"
title = {{ zh = "泄露接管", en = "Leak takeover" }}
[start]
rules = ["leak.pii_in_message"]
[[steps]]
id = "contain"
title = "Contain"
owner = "oncall"
deadline = "{DEADLINE_S}s"
deadline_from = "start"
escalation = {{ after = "{ESCALATE_AFTER_S}s", repeat = 1, notify = ["duty-group"], {ROLES} }}
"""


def stack_config(library: Path, receiver: str) -> str:
    return (
        f'[playbooks]\nlibrary = "{library}"\n'
        f'[[webhooks]]\nname = "duty-group"\nkind = "json"\nurl = "{receiver}/json"\n'
    )


async def step_of(redis: aioredis.Redis, run_id: str) -> dict[str, Any]:
    runner = PlaybookRunner(redis, IncidentStore(redis), None, Library([]))
    step: dict[str, Any] = (await runner.get(run_id))["steps"][0]
    return step


async def start_workers(redis_url: str, data_dir: Path) -> dict[str, WorkerProcess]:
    workers = {w: WorkerProcess(redis_url, data_dir, w) for w in ("w1", "w2")}
    for worker in workers.values():
        worker.start()
    await until(lambda: all(registered(redis_url, w) for w in workers), 30, "both registered")
    await until(lambda: task_holder(redis_url, "timers") in workers, 30, "a timers holder")
    return workers


def leak_now(redis_url: str) -> None:
    client = connect_sync(redis_url)
    try:
        event = AgentMessage(
            ts=time.time(), source="im", agent_id="a-7", conversation_id="c-7",
            channel="chat", direction="to_customer", text=ID_TEXT,
        )  # fmt: skip
        publish(client, [event])
    finally:
        client.close()


async def test_an_escalation_due_while_its_worker_is_dead_is_sent_once_by_the_other(
    redis_url: str, redis_client: aioredis.Redis, serve_app: Any, tmp_path: Path
) -> None:
    rec = Receiver()
    base = await serve_app(rec.app)
    library = tmp_path / "library"
    library.mkdir()
    (library / "leak-takeover.toml").write_text(PLAYBOOK, encoding="utf-8")
    data_dir = init_data_dir(tmp_path / "data", stack_config(library, base))
    workers = await start_workers(redis_url, data_dir)
    try:
        leak_now(redis_url)
        run_id = await until(lambda: run_of_incident(redis_url), 20, "the playbook run")
        started = (await PlaybookRunner(
            redis_client, IncidentStore(redis_client), None, Library([])
        ).get(run_id))["started_at"]  # fmt: skip
        holder = str(task_holder(redis_url, "timers"))
        other = next(w for w in workers if w != holder)
        workers[holder].kill()
        killed_at = time.time()
        assert killed_at < started + DEADLINE_S, "too slow to kill before the deadline"
        assert (await step_of(redis_client, run_id))["state"] != "late"
        await until(lambda: task_holder(redis_url, "timers") == other, 20, "the takeover")
        takeover_s = time.time() - killed_at
        await until(lambda: len(rec.received) >= 1, 30, "the escalation delivered")
        due = started + DEADLINE_S + ESCALATE_AFTER_S
        late_s = time.time() - due
        await asyncio.sleep(3.0)  # time for a doubled escalation to show, if there were one
        step = await step_of(redis_client, run_id)
        survivor_alive = alive(workers[other])
        distinct, _ = stored_ids(redis_url)
        counted = processed_events(redis_url)
        opened = all_incidents(redis_url)
    finally:
        for worker in workers.values():
            await asyncio.to_thread(worker.stop)

    deliveries = [r for r in rec.received if r["body"].get("purpose") == "escalation"]
    counts = Counts(
        sent=1, acknowledged=1, stored=distinct, processed=counted, incidents_expected=1,
        incidents_opened=len(opened),
        extra={"escalations": step["escalations"], "deliveries": len(rec.received),
               "killed": holder, "timers_taken_by": other, "takeover_s": round(takeover_s, 2),
               "delivered_after_due_s": round(late_s, 2)},
    )  # fmt: skip
    print("\n" + counts.row("escalation after a takeover"))
    assert survivor_alive, workers[other].log()
    assert step["state"] == "escalated" and step["escalations"] == 1, step
    assert len(rec.received) == 1 and len(deliveries) == 1, rec.received
    assert rec.received[0]["key"] == f"{run_id}:contain:esc:1:duty-group"
    assert opened == [("leak.pii_in_message", "a-7")] and distinct == counted == 1
    assert rec.rejected == []
