"""The run state machine with an injected clock: deadlines, repeated escalation, waits,
approvals, failed actions, drills and their scores. Timers are fired by ``tick()``."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.playbooks.helpers import RecordingAudit, webhooks_toml
from watchfloor.core import keys
from watchfloor.core.config import load_config
from watchfloor.core.incidents import IncidentStore
from watchfloor.playbooks.actions.executor import ActionExecutor
from watchfloor.playbooks.actions.http import RetryPolicy
from watchfloor.playbooks.drill import list_drills
from watchfloor.playbooks.errors import NotAllowed, RunConflict, StepNotFound
from watchfloor.playbooks.flags import get_flags
from watchfloor.playbooks.library import Library
from watchfloor.playbooks.runner import PlaybookRunner

T0 = float(int(time.time()))  # robots refuse signatures far from their own clock
PLAYBOOK = """
id = "timed"
title = { zh = "计时", en = "Timed" }
[start]
kinds = ["surge"]
[[steps]]
id = "first"
title = "First"
owner = "oncall"
deadline = "60s"
deadline_from = "start"
escalation = { after = "30s", every = "60s", repeat = 3, notify = ["duty-group"] }
[[steps]]
id = "pause"
title = "Pause"
owner = "oncall"
needs = ["first"]
action = { type = "wait", duration = "5m" }
[[steps]]
id = "flag"
title = "Flag"
owner = "oncall"
needs = ["first"]
action = { type = "set_flag", flag = "auto_reply", value = "on" }
[[steps]]
id = "call"
title = "Call"
owner = "oncall"
needs = ["first"]
action = { type = "notify", target = "default", message = "call {subject}" }
[[steps]]
id = "sign-off"
title = "Sign off"
owner = "duty_manager"
needs = ["pause", "flag", "call"]
deadline = "10m"
approval = "security_officer"
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def timed(redis_client: Any, receiver: Any, tmp_path: Path) -> Any:
    rec, base = receiver
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "timed.toml").write_text(PLAYBOOK, encoding="utf-8")
    config = load_config(webhooks_toml(base) + f'\n[playbooks]\ndrill_target = "{base}/drill"\n')
    clock = Clock()
    actions = ActionExecutor.from_config(
        redis_client, config, RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=2)
    )
    actions.notifier.clock = clock
    incidents = IncidentStore(redis_client)
    audit = RecordingAudit()
    runner = PlaybookRunner(
        redis_client, incidents, audit, Library.load(lib), actions=actions, clock=clock
    )
    incident = await incidents.create_manual(
        title="Surge", severity="major", subject="presales", actor="li.wei", at=T0
    )
    yield SimpleNamespace(runner=runner, clock=clock, rec=rec, audit=audit, incident=incident)
    await actions.aclose()


def steps(run: dict) -> dict[str, dict]:
    return {s["id"]: s for s in run["steps"]}


async def advance(runner: PlaybookRunner, clock: Clock, seconds: float) -> dict:
    clock.now += seconds
    while await runner.tick():
        pass


async def test_a_late_step_escalates_repeatedly_up_to_its_limit(timed: Any) -> None:
    runner, clock, rec, audit, incident = (
        timed.runner,
        timed.clock,
        timed.rec,
        timed.audit,
        timed.incident,
    )
    run = await runner.start("timed", incident.id, actor="li.wei", role="duty_manager")
    assert steps(run)["first"]["deadline"] == T0 + 60
    await advance(runner, clock, 59)
    assert steps(await runner.get(run["id"]))["first"]["state"] == "ready"
    await advance(runner, clock, 2)
    first = steps(await runner.get(run["id"]))["first"]
    assert first["state"] == "late" and first["escalations"] == 0
    for expected in (1, 2, 3, 3, 3):  # escalations at 90 s, 150 s, 210 s, then no more
        await advance(runner, clock, 60)
        assert steps(await runner.get(run["id"]))["first"]["escalations"] == expected
    assert len(rec.of("dingtalk")) == 3
    assert [r["key"] for r in rec.of("dingtalk")] == [
        f"{run['id']}:first:esc:{n}:duty-group" for n in (1, 2, 3)
    ]
    assert audit.actions().count("run.step.escalate") == 3


async def test_steps_flow_through_actions_waits_and_approval(timed: Any, redis_client: Any) -> None:
    runner, clock, rec, incident = timed.runner, timed.clock, timed.rec, timed.incident
    run = await runner.start("timed", incident.id, actor="li.wei", role="duty_manager")
    rid = run["id"]
    with pytest.raises(RunConflict, match="waits for first"):
        await runner.step("done", rid, "pause", actor="a", role="oncall")
    await advance(runner, clock, 10)
    run = await runner.step("done", rid, "first", actor="zhang.san", role="oncall", note="seen")
    await advance(runner, clock, 1)
    s = steps(await runner.get(rid))
    assert s["flag"]["state"] == "done" and s["call"]["state"] == "done"
    assert s["pause"]["state"] == "ready"
    assert (await get_flags(redis_client))["auto_reply"]["value"] == "on"
    assert rec.of("json")[0]["body"]["text"] == "call presales"
    await advance(runner, clock, 300)
    s = steps(await runner.get(rid))
    assert s["pause"]["state"] == "done" and s["sign-off"]["ready_at"] == T0 + 311
    run = await runner.step("approve", rid, "sign-off", actor="wang.fang", role="security_officer")
    assert run["state"] == "active"  # approved, but nobody has done it yet
    run = await runner.step("done", rid, "sign-off", actor="li.wei", role="duty_manager")
    assert run["state"] == "completed" and run["finished_at"] == T0 + 311
    assert run["score"]["time_to_ack_s"] == 10
    assert await runner.list("active") == [] and len(await runner.list("completed")) == 1


async def test_a_failing_webhook_is_retried_with_one_key_then_shown_on_the_step(timed: Any) -> None:
    runner, clock, rec, incident = timed.runner, timed.clock, timed.rec, timed.incident
    rec.fail_next = 5  # more than the three attempts
    run = await runner.start("timed", incident.id, actor="li.wei", role="duty_manager")
    await runner.step("done", run["id"], "first", actor="a", role="oncall")
    await advance(runner, clock, 1)
    call = steps(await runner.get(run["id"]))["call"]
    assert call["state"] == "failed"
    assert call["action_result"]["attempts"] == 3 and call["action_result"]["status"] == 503
    assert {r["key"] for r in rec.rejected} == {f"{run['id']}:call:1"}
    await runner.step("retry", run["id"], "call", actor="a", role="oncall")
    rec.fail_next = 1
    await advance(runner, clock, 1)
    call = steps(await runner.get(run["id"]))["call"]
    assert call["state"] == "done" and call["action_result"]["attempts"] == 2
    assert rec.of("json")[-1]["key"] == f"{run['id']}:call:2"


async def test_roles_and_states_are_enforced(timed: Any) -> None:
    runner, incident = timed.runner, timed.incident
    with pytest.raises(NotAllowed):
        await runner.start("timed", incident.id, actor="v", role="oncall")
    run = await runner.start("timed", incident.id, actor="li.wei", role="duty_manager")
    with pytest.raises(RunConflict):
        await runner.start("timed", incident.id, actor="li.wei", role="duty_manager")
    with pytest.raises(NotAllowed):
        await runner.step("done", run["id"], "first", actor="v", role="viewer")
    with pytest.raises(StepNotFound):
        await runner.step("done", run["id"], "nope", actor="a", role="oncall")
    await runner.step("done", run["id"], "first", actor="a", role="oncall")
    with pytest.raises(RunConflict, match="already done"):
        await runner.step("done", run["id"], "first", actor="a", role="oncall")
    run = await runner.abort(run["id"], actor="li.wei", role="duty_manager", note="false alarm")
    assert run["state"] == "aborted"
    with pytest.raises(RunConflict):
        await runner.step("done", run["id"], "flag", actor="a", role="oncall")


async def test_a_drill_notifies_only_the_drill_target_sets_no_flag_and_is_scored(
    timed: Any, redis_client: Any
) -> None:
    runner, clock, rec = timed.runner, timed.clock, timed.rec
    run = await runner.start("timed", None, actor="li.wei", role="duty_manager", drill=True)
    assert run["drill"] and run["incident"] is None
    await advance(runner, clock, 95)  # late at 60 s, escalated at 90 s
    await runner.step("done", run["id"], "first", actor="a", role="oncall")
    await advance(runner, clock, 301)
    await runner.step("approve", run["id"], "sign-off", actor="w", role="security_officer")
    run = await runner.step("done", run["id"], "sign-off", actor="l", role="duty_manager")
    assert run["state"] == "completed"
    assert rec.of("dingtalk") == [] and rec.of("json") == []
    assert {r["body"]["purpose"] for r in rec.of("drill")} == {"escalation", "action"}
    assert "auto_reply" not in await get_flags(redis_client)
    assert steps(run)["flag"]["action_result"]["suppressed"]
    score = run["score"]
    assert score["late_steps"] == 1 and score["escalations"] == 1
    assert score["time_to_ack_s"] == 95 and score["points"] == 100 - 15 - 5
    first = next(s for s in score["steps"] if s["id"] == "first")
    assert first["over_s"] == 35 and first["deadline_s"] == 60
    drills = await list_drills(redis_client)
    assert [d["run"] for d in drills] == [run["id"]] and drills[0]["score"]["grade"] == "B"


async def test_every_change_reaches_the_changes_stream(timed: Any, redis_client: Any) -> None:
    from watchfloor.core.changes import decode_change

    runner, incident = timed.runner, timed.incident
    run = await runner.start("timed", incident.id, actor="li.wei", role="duty_manager")
    await runner.step("done", run["id"], "first", actor="a", role="oncall")
    entries = await redis_client.xrange(keys.CHANGES)
    ops = [c["op"] for c in map(decode_change, (f for _, f in entries)) if c["kind"] == "run"]
    assert ops[:2] == ["started", "step_done"]
