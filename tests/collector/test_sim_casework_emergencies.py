"""Labelled casework emergencies in the simulated days: a delivery delay left without a solution,
an agent paying out refunds in a burst, an account claiming refund-only again and again.

Each is labelled like the day's other emergencies, drawn from a random stream of its own (the
rest of the day is the same with or without them), and a drive of the casework rules over a
whole day's casework finds each of them, no earlier than its limit, and nothing else.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from functools import cache
from typing import Any

import pytest

from watchfloor.collector.simulator.casework import CaseEmergency
from watchfloor.collector.simulator.days import (
    DAY_S,
    DAYS,
    DayWorld,
    casework_day,
    day_start,
    day_world,
    expected_day,
    run_day,
)
from watchfloor.collector.simulator.detect_limits import SOLUTION_S, limits
from watchfloor.collector.simulator.detect_table import DayResult, table
from watchfloor.core.events import validate_batch
from watchfloor.monitor.detectors.complaints import ComplaintDetector
from watchfloor.monitor.detectors.logistics import LogisticsDetector
from watchfloor.monitor.detectors.orders import OrderDetector
from watchfloor.monitor.drive import Trace, drive
from watchfloor.monitor.rules import load_rules

CASEWORK_SOURCES = frozenset({"case-desk", "oms"})
RULES = {"logistics.unanswered", "orders.agent_burst", "orders.account_burst"}


@cache
def casework(name: str, seed: int) -> tuple[dict[str, Any], ...]:
    return tuple(e for second in casework_day(name, seed=seed) for e in second)


def labelled(name: str) -> list[dict[str, Any]]:
    return [e for e in expected_day(name) if e.get("rule") in RULES]


@cache
def driven(name: str, seed: int) -> Trace:
    raw = list(casework(name, seed))
    events = [
        e for i in range(0, len(raw), 10_000) for e in validate_batch(raw[i : i + 10_000]).events
    ]
    assert len(events) == len(raw)
    rules = load_rules()
    detectors = [ComplaintDetector(rules), LogisticsDetector(rules), OrderDetector(rules)]
    # Evaluations on the minute, as the engine's timers fall on the rules' bucket edges.
    return drive(detectors, events, step_s=60.0, start=day_start(DAYS[name]), until=raw[-1]["ts"])


@pytest.mark.parametrize("name", list(DAYS))
def test_each_day_labels_its_three_casework_emergencies_like_the_others(name: str) -> None:
    expected = labelled(name)
    assert sorted((e["rule"], e["kind"]) for e in expected) == [
        ("logistics.unanswered", "sla"),
        ("orders.account_burst", "leak"),
        ("orders.agent_burst", "leak"),
    ]
    start = day_start(DAYS[name])
    for e in expected:
        assert start <= e["from_ts"] < e["to_ts"] <= start + DAY_S
        assert e["to_ts"] - e["from_ts"] > 600 and e["label"] and e["why"]
    delay = next(e for e in expected if e["kind"] == "sla")
    assert delay["subject"] == "aftersale-chat"
    assert delay["to_ts"] - delay["from_ts"] > SOLUTION_S + 600  # the solution comes late


def test_the_emergencies_come_at_other_times_and_on_other_subjects_each_day() -> None:
    for rule in RULES:
        starts = {e["from_ts"] % DAY_S for n in DAYS for e in labelled(n) if e["rule"] == rule}
        subjects = {e["subject"] for n in DAYS for e in labelled(n) if e["rule"] == rule}
        assert len(starts) == len(DAYS)
        assert rule == "logistics.unanswered" or len(subjects) == len(DAYS)


def test_a_seed_gives_the_same_emergencies_and_another_seed_others() -> None:
    def payouts(events: Any) -> list[dict[str, Any]]:
        return [e for e in events if e.get("agent_id") == "agent-017"
                and e["action"] in ("refund_only", "compensation")]  # fmt: skip

    first = payouts(casework("day-normal", 1))
    again = payouts(e for second in casework_day("day-normal", seed=1) for e in second)
    assert first == again and len(first) >= 48
    other = payouts(casework("day-normal", 2))
    assert {e["order_id"] for e in first}.isdisjoint({e["order_id"] for e in other})


def test_the_casework_alone_is_the_casework_of_the_whole_day() -> None:
    world = day_world("day-double11", seed=2)
    seconds = int(1.9 * 3600)  # through the account's claims at 01:10-01:45
    whole = [e for s in run_day(world, seconds) for e in s if e["source"] in CASEWORK_SOURCES]
    alone = [e for e in casework("day-double11", 2) if e["ts"] < world.start_ts + seconds]
    assert whole == alone
    assert sum(e.get("account") == labelled("day-double11")[0]["subject"] for e in alone) == 7


@pytest.mark.parametrize(
    ("name", "start_h", "added"),
    [
        ("day-normal", 12.5, 48 + 1),  # the agent's payouts at 12:35, the delay's report at 13:15
        ("day-double11", 1.0, 7),  # the account's claims at 01:10
    ],
)
def test_the_rest_of_the_day_is_the_same_with_or_without_the_emergencies(
    name: str, start_h: float, added: int
) -> None:
    seed, start_s, seconds = 3, int(start_h * 3600), 50 * 60

    def events(day: Any) -> list[dict[str, Any]]:
        world = DayWorld(day, random.Random(seed), day_start(day), f"{name}-s{seed}-{start_s}",
                         start_s)  # fmt: skip
        return [e for second in run_day(world, seconds) for e in second]

    day = DAYS[name]
    with_them, without = events(day), events(replace(day, casework=()))
    others = [e for e in with_them if e["source"] not in CASEWORK_SOURCES]
    assert others == [e for e in without if e["source"] not in CASEWORK_SOURCES]
    assert len(others) > 1000

    def case(e: dict[str, Any]) -> str:  # ids count the source's events, emergencies included
        return json.dumps({k: v for k, v in e.items() if k != "id"}, ensure_ascii=False)

    ordinary = [case(e) for e in without if e["source"] in CASEWORK_SOURCES]
    planned = [case(e) for e in with_them if e["source"] in CASEWORK_SOURCES]
    extra = [e for e in planned if e not in set(ordinary)]
    assert [e for e in planned if e not in set(extra)] == ordinary
    assert len(extra) == added


@pytest.mark.parametrize("name", list(DAYS))
@pytest.mark.parametrize("seed", [1, 2])
def test_the_casework_rules_find_each_labelled_emergency_at_its_limit_and_nothing_else(
    name: str, seed: int
) -> None:
    expected = labelled(name)
    trace = driven(name, seed)
    assert {(s.rule, s.subject) for s in trace.seen.values()} == {
        (e["rule"], e["subject"]) for e in expected
    }
    bounds = limits(casework(name, seed), expected)
    for exp, limit in zip(expected, bounds, strict=True):
        seen = next(s for s in trace.seen.values() if s.rule == exp["rule"])
        delay = seen.first_at - exp["from_ts"]
        assert exp["from_ts"] <= seen.first_at <= exp["to_ts"]
        if exp["rule"] == "logistics.unanswered":
            assert limit == SOLUTION_S == delay  # the deadline is the evidence
        else:  # the burst is judged on 5-minute buckets: at the next edge after its limit
            assert 0 <= delay - limit <= 300 + 60, (exp["rule"], delay, limit)


def test_the_account_limit_is_its_fifth_order_and_the_agent_limit_is_inside_the_burst() -> None:
    expected = labelled("day-spring-festival")
    events = casework("day-spring-festival", 1)
    bounds = dict(zip((e["rule"] for e in expected), limits(events, expected), strict=True))
    account = next(e for e in expected if e["rule"] == "orders.account_burst")
    claims = [e["ts"] for e in events if e.get("account") == account["subject"]]
    assert len(claims) == 7
    assert bounds["orders.account_burst"] == claims[4] - account["from_ts"]
    agent = next(e for e in expected if e["rule"] == "orders.agent_burst")
    payouts = [e["ts"] - agent["from_ts"] for e in events if e.get("agent_id") == agent["subject"]
               and e["ts"] >= agent["from_ts"]]  # fmt: skip
    # Fewer than 4 active hours before 11:45 on a thin day: 40 changes in the hour.
    assert bounds["orders.agent_burst"] in payouts[:48]
    assert bounds["orders.agent_burst"] > payouts[20]


def test_the_table_has_rows_for_the_casework_and_false_alarms_by_rule() -> None:
    name = "day-normal"
    expected = labelled(name)
    opened = [
        {"kind": s.last.kind, "subject": s.subject, "rule": s.rule, "opened_at": s.first_at,
         "title": s.last.title} for s in driven(name, 1).seen.values()
    ]  # fmt: skip
    # The queue's own SLA breach on the delays' queue is not the unanswered delay.
    sla = {"kind": "sla", "subject": "aftersale-chat", "rule": "sla.queue",
           "opened_at": expected[1]["from_ts"] + 60, "title": "longest wait 95 s"}  # fmt: skip
    text = table(
        [DayResult(name, 1, expected, [*opened, sla], limits(casework(name, 1), expected))]
    )
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert any(
        r.startswith("| sla | delivery delay left without a solution | 1/1 | 7200 s") for r in rows
    )
    assert any(r.startswith("| leak | agent pays out refunds in a burst | 1/1 |") for r in rows)
    assert any(
        r.startswith("| leak | account claims refund-only again and again | 1/1 |") for r in rows
    )
    assert "False alarms: 1 in 1 days, **1.0 a day**." in text
    assert "By rule, a day: `sla.queue` 1.0." in text


def test_an_emergency_starting_before_a_slice_sends_nothing_from_before_it() -> None:
    day = DAYS["day-normal"]
    burst = next(c for c in day.casework if c.what == "agent payout burst")
    assert isinstance(burst, CaseEmergency)
    start_s = burst.start_s + 8 * 60  # half-way through the burst
    world = day_world("day-normal", seed=1, start_s=start_s)
    events = [e for s in run_day(world, 600) for e in s if e["source"] == "oms"]
    assert events and min(e["ts"] for e in events) >= world.start_ts + start_s
    payouts = [e for e in events if e["agent_id"] == burst.subject
               and e["action"] in ("refund_only", "compensation")]  # fmt: skip
    assert 5 < len(payouts) < 48
