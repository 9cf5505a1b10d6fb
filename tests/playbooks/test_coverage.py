"""Auto-start runs one playbook per problem: an incident on a subject that an active run
already works (same nature of problem) is linked to that run instead of starting another."""

from __future__ import annotations

import time
from typing import Any

import pytest

from watchfloor.playbooks.coverage import covers


async def fire(w: Any, kind: str, rule: str, subject: str, severity: str = "major") -> Any:
    result = await w.incidents.fire(
        kind=kind,
        rule=rule,
        subject=subject,
        severity=severity,
        title=f"{rule} on {subject}",
        evidence={},
        at=time.time(),
    )
    return result.incident


@pytest.mark.parametrize(
    ("a", "b", "merge"),
    [
        ("surge", "sla", True),
        ("surge", "surge", True),
        ("sla", "surge", False),  # a surge after an SLA breach starts the surge playbook
        ("sla", "sla", True),
        ("outage", "outage", True),
        ("opinion", "opinion", True),
        ("outage", "sla", False),
        ("surge", "opinion", False),
        ("leak", "leak", False),
        ("leak", "sla", False),
        ("manual", "manual", False),
    ],
)
def test_which_runs_cover_which_kinds_of_incident(a: str, b: str, merge: bool) -> None:
    assert covers(a, b) is merge


async def test_a_queue_in_trouble_runs_one_playbook_for_its_surge_and_its_sla_breach(
    wired: Any,
) -> None:
    w = wired
    surge = await fire(w, "surge", "surge.offered", "presale-chat")
    run = await w.runner.on_incident(surge)
    assert run["playbook"] == "contact-surge"
    sla = await fire(w, "sla", "sla.queue", "presale-chat", "critical")
    covered = await w.runner.on_incident(sla)
    assert covered["id"] == run["id"]
    assert covered["covers"] == [sla.id]
    assert len(await w.runner.list()) == 1
    linked = await w.incidents.get(sla.id)
    assert linked.playbook_run == run["id"]
    notes = [e.get("note", "") for e in await w.incidents.timeline(sla.id)]
    assert f"covered by run {run['id']} contact-surge" in notes
    assert await w.runner.run_for_incident(sla.id) == run["id"]
    # Once per incident: a severity rise of the covered incident starts nothing either.
    again = await w.runner.on_incident(sla, False, True)
    assert again["id"] == run["id"]
    assert len(await w.runner.list()) == 1
    own = [e["event"] for e in await w.incidents.timeline(surge.id)]
    assert "covers" in own


async def test_a_surge_after_an_sla_breach_starts_the_surge_playbook(wired: Any) -> None:
    w = wired
    sla = await fire(w, "sla", "sla.queue", "presale-chat")
    sla_run = await w.runner.on_incident(sla)
    surge = await fire(w, "surge", "surge.offered", "presale-chat", "critical")
    surge_run = await w.runner.on_incident(surge)
    assert (sla_run["playbook"], surge_run["playbook"]) == ("sla-breach", "contact-surge")
    assert len(await w.runner.list()) == 2
    assert (await w.runner.on_incident(sla))["id"] == sla_run["id"]  # still once per incident


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("surge", "surge.offered", "presale-chat"), ("sla", "sla.queue", "aftersale-chat")),
        (("outage", "outage.component", "crm"), ("outage", "outage.heartbeat", "order-api")),
        (("outage", "outage.component", "presale-chat"), ("sla", "sla.queue", "presale-chat")),
        (("leak", "leak.bulk_export", "agent-7"), ("leak", "leak.pii_in_message", "agent-7")),
    ],
    ids=["other queue", "other component", "outage and sla", "leaks never merge"],
)
async def test_a_different_subject_or_nature_starts_its_own_playbook(
    wired: Any, first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    w = wired
    one = await w.runner.on_incident(await fire(w, *first, severity="critical"))
    two = await w.runner.on_incident(await fire(w, *second, severity="critical"))
    assert one is not None and two is not None
    assert two["id"] != one["id"]
    assert "covers" not in one and "covers" not in two
    assert len(await w.runner.list()) == 2


async def test_outages_of_one_component_share_its_run(wired: Any) -> None:
    w = wired
    down = await w.runner.on_incident(
        await fire(w, "outage", "outage.component", "crm", "critical")
    )
    assert down["playbook"] == "system-crash"
    silent = await fire(w, "outage", "outage.silent_queue", "crm")
    assert (await w.runner.on_incident(silent))["id"] == down["id"]


async def test_a_finished_run_covers_nothing(wired: Any) -> None:
    w = wired
    surge = await fire(w, "surge", "surge.offered", "presale-chat")
    run = await w.runner.on_incident(surge)
    await w.runner.abort(run["id"], actor="li.wei", role="duty_manager", note="handled")
    sla = await fire(w, "sla", "sla.queue", "presale-chat")
    second = await w.runner.on_incident(sla)
    assert second["id"] != run["id"] and second["playbook"] == "sla-breach"


async def test_a_manual_start_is_not_covered(wired: Any) -> None:
    w = wired
    surge = await fire(w, "surge", "surge.offered", "presale-chat")
    run = await w.runner.on_incident(surge)
    sla = await fire(w, "sla", "sla.queue", "presale-chat")
    manual = await w.runner.start("sla-breach", sla.id, actor="li.wei", role="duty_manager")
    assert manual["id"] != run["id"] and manual["playbook"] == "sla-breach"
