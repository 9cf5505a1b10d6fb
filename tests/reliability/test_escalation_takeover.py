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

from tests.playbooks.helpers import Receiver
from tests.reliability.processes import (
    alive,
    all_incidents,
    leak_now,
    playbook_data_dir,
    processed_events,
    run_of_incident,
    start_workers,
    step_of,
    stored_ids,
    task_holder,
    until,
)
from tests.reliability.stack import Counts
from watchfloor.core.incidents import IncidentStore
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


async def test_an_escalation_due_while_its_worker_is_dead_is_sent_once_by_the_other(
    redis_url: str, redis_client: aioredis.Redis, serve_app: Any, tmp_path: Path
) -> None:
    rec = Receiver()
    base = await serve_app(rec.app)
    data_dir = playbook_data_dir(tmp_path, PLAYBOOK, base)
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
