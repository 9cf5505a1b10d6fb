"""A run driven end to end: incident -> auto-started run -> signed notification received
-> steps done -> run completed, with flags, timeline, link and audit on the way."""

from __future__ import annotations

import time
from typing import Any

from tests.playbooks.helpers import wait_for
from watchfloor.playbooks.flags import get_flags


async def fire_surge(w: Any, severity: str = "major") -> Any:
    result = await w.incidents.fire(
        kind="surge",
        rule="surge.waiting",
        subject="presales-chat",
        severity=severity,
        title="Waiting contacts 4x normal",
        evidence={"waiting": 180},
        at=time.time(),
    )
    return result.incident


async def test_surge_incident_runs_contact_surge_playbook_to_completion(wired: Any) -> None:
    w = wired
    incident = await fire_surge(w)
    run = await w.runner.on_incident(incident)
    assert run is not None and run["playbook"] == "contact-surge"
    assert run["id"].startswith("RUN-") and run["state"] == "active"

    async def notified() -> Any:
        return w.receiver.of("dingtalk")

    sent = await wait_for(notified)
    assert not w.receiver.rejected, "every robot signature must verify"
    assert "presales-chat" in sent[0]["body"]["markdown"]["text"]
    assert sent[0]["key"] == f"{run['id']}:call-standby:1"

    async def automatic_steps_done() -> bool:
        current = await w.runner.get(run["id"])
        states = {s["id"]: s["state"] for s in current["steps"]}
        return all(
            states[s] == "done"
            for s in ("auto-reply", "faq", "call-standby", "overflow-queue", "prioritise")
        )

    await wait_for(automatic_steps_done)
    flags = await get_flags(w.redis)
    assert flags["auto_reply"]["value"] == "on" and flags["auto_reply"]["run"] == run["id"]
    assert flags["priority_routing"]["value"] == "complaints,vip"

    for step in ("agents-online", "publish-notice", "stand-down"):
        current = await w.runner.step("done", run["id"], step, actor="li.wei", role="duty_manager")
    assert current["state"] == "completed"
    assert current["score"]["late_steps"] == 0

    linked = await w.incidents.get(incident.id)
    assert linked.playbook_run == run["id"]
    events = [e["event"] for e in await w.incidents.timeline(incident.id)]
    assert "playbook_started" in events and "step_done" in events
    assert "playbook_completed" in events
    actions = w.audit.actions()
    assert actions[0] == "run.start" and "run.completed" in actions
    assert actions.count("run.step.done") == 3


async def test_an_incident_starts_its_playbook_only_once(wired: Any) -> None:
    w = wired
    incident = await fire_surge(w)
    first = await w.runner.on_incident(incident)
    again = await fire_surge(w, "critical")  # same rule and subject: the same incident
    second = await w.runner.on_incident(again)
    assert second["id"] == first["id"]
    assert len(await w.runner.list()) == 1


async def test_incident_without_matching_playbook_starts_nothing(wired: Any) -> None:
    result = await wired.incidents.fire(
        kind="surge",
        rule="surge.waiting",
        subject="q",
        severity="info",
        title="t",
        evidence={},
        at=time.time(),
    )
    assert await wired.runner.on_incident(result.incident) is None


async def test_leak_run_signs_feishu_and_waits_for_the_security_officer(wired: Any) -> None:
    w = wired
    result = await w.incidents.fire(
        kind="leak",
        rule="leak.pii",
        subject="agent-0042",
        severity="major",
        title="ID card number sent to a customer",
        evidence={"text": "1101**********1234"},
        at=time.time(),
    )
    run = await w.runner.on_incident(result.incident)
    assert run["playbook"] == "data-leak"

    async def feishu() -> Any:
        return w.receiver.of("feishu")

    message = (await wait_for(feishu))[0]["body"]
    assert not w.receiver.rejected and "agent-0042" in message["content"]["text"]
    rid = run["id"]
    await w.runner.step("done", rid, "contain", actor="zhang.san", role="oncall")
    await w.runner.step("done", rid, "preserve-evidence", actor="zhang.san", role="oncall")

    async def approval_ready() -> bool:
        step = next(s for s in (await w.runner.get(rid))["steps"] if s["id"] == "security-approval")
        return step["ready_at"] is not None

    await wait_for(approval_ready)
    run = await w.runner.step("done", rid, "security-approval", actor="li.wei", role="duty_manager")
    step = next(s for s in run["steps"] if s["id"] == "security-approval")
    assert step["state"] != "done" and step["awaiting_approval"]
    try:
        await w.runner.step("approve", rid, "security-approval", actor="x", role="oncall")
        raise AssertionError("an on-call agent must not approve for the security officer")
    except Exception as exc:
        assert type(exc).__name__ == "NotAllowed"
    run = await w.runner.step(
        "approve", rid, "security-approval", actor="wang.fang", role="security_officer"
    )
    step = next(s for s in run["steps"] if s["id"] == "security-approval")
    assert step["state"] == "done" and step["approval"]["by"] == "wang.fang"
    assert "run.step.approve" in w.audit.actions()


async def test_an_incident_rising_to_a_playbooks_minimum_starts_it_then(wired: Any) -> None:
    w = wired
    minor = await fire_surge(w, "minor")
    assert await w.runner.on_incident(minor, True, False) is None
    raised = await fire_surge(w, "major")
    assert raised.id == minor.id
    run = await w.runner.on_incident(raised, False, True)
    assert run is not None and run["incident"] == minor.id
