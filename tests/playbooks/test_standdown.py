"""A run whose incidents are all resolved stops paging people, and resumes when one is back.

Through the real monitor service (engine, lifecycle, incident store on Redis)
and the runner (timers fired by ``tick()`` on an injected clock): a component
goes down, the built-in system-crash playbook starts (its "switch to the backup
system" step escalates to management 10 minutes after start), the incident is
resolved (by the engine when the component recovers, or by a person), and the step's deadline and
escalations then page no one; the run shows why. When the component goes down
again, the new incident is covered by the same run, which resumes.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.api.doubles import T0 as EVENT_T0
from tests.api.doubles import DownTwiceDetector, health, offered
from tests.playbooks.helpers import RecordingAudit, webhooks_toml
from tests.playbooks.test_runner import Clock, advance
from watchfloor.core import keys
from watchfloor.core.bus import EventProducer
from watchfloor.core.config import load_config
from watchfloor.core.incidents import IncidentStore
from watchfloor.monitor.board import Board
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.lifecycle import Lifecycle
from watchfloor.monitor.service import MonitorService
from watchfloor.playbooks.actions.executor import ActionExecutor
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner

CONFIG = load_config(
    "[redis]\nshards = 1\n[monitor]\nblock_ms = 20\nclaim_idle_ms = 50\ntick_s = 0\n"
)


@pytest.fixture
async def stack(redis_client: Any, receiver: Any) -> Any:
    rec, base = receiver
    clock = Clock()
    actions = ActionExecutor.from_config(
        redis_client,
        load_config(webhooks_toml(base)),
        RetryPolicy(attempts=1, backoff_s=0.01, timeout_s=2),
    )
    actions.notifier.clock = clock
    audit = RecordingAudit()
    store = IncidentStore(redis_client)
    runner = PlaybookRunner(
        redis_client, store, audit, Library.load(), actions=actions, clock=clock
    )
    board = Board()
    engine = Engine([DownTwiceDetector()], lifecycle=Lifecycle(), observers=[board])
    monitor = MonitorService(
        redis_client,
        CONFIG,
        engine=engine,
        on_incident=runner.on_incident,
        audit=audit,
        consumer_name="m1",
        clock=lambda: EVENT_T0,
    )
    monitor.applier.on_resolved = runner.on_resolved  # as watchfloor.monitor_process wires it
    await monitor.start()

    async def feed(*events: Any) -> None:
        await EventProducer(redis_client, stream=keys.events_shard(0)).publish_events(list(events))
        for _ in range(3):
            await monitor.step()
        await monitor.commit(force=True)

    yield SimpleNamespace(runner=runner, clock=clock, rec=rec, audit=audit, store=store, feed=feed)
    await actions.aclose()


def switch_backup(run: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == "switch-backup")


async def crm_goes_down(stack: Any, at: float) -> dict[str, Any]:
    await stack.feed(health(at, "crm", "down"), health(at + 0.2, "crm", "down"), offered(at + 9))
    [incident] = await stack.store.list("open")
    run_id = await stack.runner.run_for_incident(incident.id)
    assert run_id is not None, "the outage playbook did not start"
    return await stack.runner.get(run_id)


@pytest.mark.parametrize("resolved_by", ["engine", "person"])
async def test_a_run_whose_incidents_are_resolved_stops_escalating_and_says_why(
    stack: Any, resolved_by: str
) -> None:
    run = await crm_goes_down(stack, EVENT_T0)
    incident_id = run["incident"]
    if resolved_by == "engine":
        await stack.feed(health(EVENT_T0 + 10, "crm", "up"), offered(EVENT_T0 + 20))
    else:
        await stack.store.resolve(incident_id, actor="li.wei", note="fixed it")
    assert (await stack.store.get(incident_id)).state == "resolved"
    await advance(stack.runner, stack.clock, 1900)  # deadline at 600 s, then every 600 s
    run = await stack.runner.get(run["id"])
    step = switch_backup(run)
    assert (step["late"], step["escalations"], stack.rec.of("wecom")) == (False, 0, [])
    assert run["state"] == "active"
    assert run["standing_down"]["reason"] == f"all its incidents are resolved ({incident_id})"
    assert stack.audit.actions().count("run.stand_down") == 1
    timeline = [e["event"] for e in await stack.store.timeline(incident_id)]
    assert "playbook_standing_down" in timeline


async def test_a_standing_down_run_resumes_when_its_problem_is_back(stack: Any) -> None:
    run = await crm_goes_down(stack, EVENT_T0)
    await stack.feed(health(EVENT_T0 + 10, "crm", "up"), offered(EVENT_T0 + 20))
    assert (await stack.runner.get(run["id"]))["standing_down"] is not None
    await advance(stack.runner, stack.clock, 120)
    again = await stack.store.list("open")
    assert again == []
    await stack.feed(
        health(EVENT_T0 + 30, "crm", "down"),
        health(EVENT_T0 + 30.2, "crm", "down"),
        offered(EVENT_T0 + 39),
    )
    [second] = await stack.store.list("open")
    run = await stack.runner.get(run["id"])
    assert run["standing_down"] is None and run["covers"] == [second.id]
    assert stack.audit.actions().count("run.resume") == 1
    assert stack.rec.of("wecom") == []
    await advance(stack.runner, stack.clock, 500)  # past the deadline (600 s from start)
    step = switch_backup(await stack.runner.get(run["id"]))
    assert step["late"] and step["escalations"] == 1
    assert len(stack.rec.of("wecom")) == 1
