"""A delivery slower than the timer claim lease is still delivered exactly once.

Real wall clock, a real runner loop and a real aiohttp receiver on 127.0.0.1 that
answers later than the (shortened) claim lease: the delivery must be held for the
delivery lease, not re-claimed by the next tick while the first attempt is running.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from tests.playbooks.helpers import RecordingAudit, wait_for, webhooks_toml
from watchfloor.core.config import load_config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.actions.executor import ActionExecutor
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner

PLAYBOOK = """
id = "call-out"
title = { zh = "呼叫", en = "Call out" }
[start]
kinds = ["surge"]
[[steps]]
id = "call"
title = "Call"
owner = "oncall"
action = { type = "notify", target = "default", message = "call {subject}" }
"""
LEASE_S = 0.3
RECEIVER_DELAY_S = 1.5  # five claim leases


async def test_a_receiver_slower_than_the_claim_lease_gets_one_delivery(
    redis_client: Any, receiver: Any, tmp_path: Path
) -> None:
    rec, base = receiver
    rec.delay_s = RECEIVER_DELAY_S
    (tmp_path / "call-out.toml").write_text(PLAYBOOK, encoding="utf-8")
    config = load_config(webhooks_toml(base))
    actions = ActionExecutor.from_config(
        redis_client, config, RetryPolicy(attempts=1, backoff_s=0.01, timeout_s=5)
    )
    incidents = IncidentStore(redis_client)
    runner = PlaybookRunner(
        redis_client,
        incidents,
        RecordingAudit(),
        Library.load(tmp_path),
        actions=actions,
        poll_s=0.05,
        lease_s=LEASE_S,
    )
    stop = asyncio.Event()
    loop = asyncio.create_task(runner.run(stop))
    try:
        incident = await incidents.create_manual(
            title="Surge", severity="major", subject="presales", actor="li.wei"
        )
        run = await runner.start("call-out", incident.id, actor="li.wei", role="duty_manager")

        async def step_finished() -> bool:
            step = (await runner.get(run["id"]))["steps"][0]
            return bool(step["state"] == "done")

        await wait_for(step_finished, timeout=10)
        await asyncio.sleep(3 * LEASE_S)  # a second claim would have started by now
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(loop, 5)
        await actions.aclose()
    assert len(rec.of("json")) == 1, [r["key"] for r in rec.of("json")]
