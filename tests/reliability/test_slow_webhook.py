"""A webhook receiver slower than the delivery lease gets one delivery, not two.

Two real monitor workers (``watchfloor monitor --worker-id w1|w2 --no-api``) with the
delivery lease shortened from config (``[playbooks] delivery_lease_s``) below the time
a real aiohttp receiver on 127.0.0.1 takes to answer. A leaking message opens an
incident whose playbook's first step notifies that receiver. Both workers stay alive,
so the timers task stays where it is; the one delivery outlives its lease, and must not
be claimed and sent again, by its own loop or by the other worker.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

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

pytestmark = pytest.mark.slow

DELIVERY_LEASE_S = 1.0
RECEIVER_DELAY_S = 4.0
"""Four delivery leases; below the delivery's HTTP timeout (10 s), so it succeeds once."""
PLAYBOOK = """
id = "leak-call-out"
title = { zh = "泄露通知", en = "Leak call-out" }
[start]
rules = ["leak.pii_in_message"]
[[steps]]
id = "call"
title = "Call the security officer"
owner = "oncall"
action = { type = "notify", target = "duty-group", message = "leak by {subject}" }
"""


class SlowReceiver(Receiver):
    """The playbook tests' receiver, counting requests as they arrive (not as answered)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []
        self.app.middlewares.append(self.count)

    @web.middleware
    async def count(self, request: Any, handler: Any) -> Any:
        self.arrived.append(time.monotonic())
        return await handler(request)


async def test_a_receiver_slower_than_the_delivery_lease_gets_one_delivery(
    redis_url: str, redis_client: aioredis.Redis, serve_app: Any, tmp_path: Path
) -> None:
    rec = SlowReceiver()
    rec.delay_s = RECEIVER_DELAY_S
    base = await serve_app(rec.app)
    settings = f"delivery_lease_s = {DELIVERY_LEASE_S}\n"
    data_dir = playbook_data_dir(tmp_path, PLAYBOOK, base, settings)
    workers = await start_workers(redis_url, data_dir)
    try:
        holder = task_holder(redis_url, "timers")
        leak_now(redis_url)
        run_id = await until(lambda: run_of_incident(redis_url), 20, "the playbook run")
        await until(lambda: rec.arrived, 20, "the delivery to arrive")

        async def step_done() -> bool:
            return bool((await step_of(redis_client, run_id))["state"] == "done")

        await until(step_done, 3 * RECEIVER_DELAY_S, "the step done with its delivery")
        # a second claim would have sent by now, and its request been answered
        await asyncio.sleep(RECEIVER_DELAY_S + 2 * DELIVERY_LEASE_S)
        step = await step_of(redis_client, run_id)
        still_holder = task_holder(redis_url, "timers")
        both_alive = alive(*workers.values())
        distinct, _ = stored_ids(redis_url)
        counted = processed_events(redis_url)
        opened = all_incidents(redis_url)
    finally:
        for worker in workers.values():
            await asyncio.to_thread(worker.stop)

    counts = Counts(
        sent=1, acknowledged=1, stored=distinct, processed=counted, incidents_expected=1,
        incidents_opened=len(opened),
        extra={"deliveries": len(rec.arrived), "answered": len(rec.received),
               "delivery_lease_s": DELIVERY_LEASE_S, "receiver_s": RECEIVER_DELAY_S,
               "timers_held_by": f"{holder}->{still_holder}"},
    )  # fmt: skip
    print("\n" + counts.row("webhook slower than the delivery lease"))
    assert both_alive, [w.log() for w in workers.values()]
    assert holder == still_holder, "the timers task moved with both workers alive"
    assert len(rec.arrived) == 1, f"{len(rec.arrived)} deliveries of one notification"
    assert len(rec.received) == 1 and rec.received[0]["body"]["purpose"] == "action"
    assert step["action_result"]["ok"] and step["action_result"]["attempts"] == 1, step
    assert opened == [("leak.pii_in_message", "a-7")] and distinct == counted == 1
