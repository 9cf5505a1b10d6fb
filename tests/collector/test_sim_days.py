"""Recorded days for back-testing: deterministic, shaped like a day, labelled, replayable.

Whole days take seconds to generate and tens of seconds to replay, so these
tests look at slices (``--window``) and at the day's plan; docs/backtest.md
has the whole-day figures.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from watchfloor.cli import main
from watchfloor.collector.simulator.days import (
    DAY_S,
    DAYS,
    SERVICE_ACCOUNT,
    curve,
    day_world,
    expected_day,
    run_day,
)
from watchfloor.collector.simulator.runner import write_day
from watchfloor.core.events import validate_batch
from watchfloor.security.pii import find_pii


@cache
def slice_of(name: str, start_h: float, hours: float, seed: int = 1) -> tuple[Any, ...]:
    world = day_world(name, seed=seed, start_s=int(start_h * 3600))
    return tuple(e for second in run_day(world, int(hours * 3600)) for e in second)


def offered(events: tuple[Any, ...]) -> int:
    return sum(e["type"] == "contact" and e["action"] == "offered" for e in events)


def test_the_same_seed_gives_the_same_slice_and_another_seed_another() -> None:
    first = slice_of("day-normal", 10, 0.25, seed=4)
    again = tuple(e for s in run_day(day_world("day-normal", seed=4, start_s=36_000), 900)
                  for e in s)  # fmt: skip
    assert first == again
    assert first != slice_of("day-normal", 10, 0.25, seed=5)


@pytest.mark.parametrize("name", list(DAYS))
def test_a_day_is_quiet_at_night_busy_in_the_morning_dips_at_lunch_and_peaks_at_night(
    name: str,
) -> None:
    day = DAYS[name]
    at = {h: curve(day, h * 3600 + 1800) for h in range(24)}
    assert max(at[h] for h in range(1, 7)) < 0.3 * max(at.values())
    assert at[10] > at[8] > at[6]  # morning ramp
    assert at[12] < at[11] and at[12] < at[14]  # lunch dip
    if not day.gala_quiet:
        assert max(at.values()) == max(at[h] for h in (0, 20, 21, 22))


def test_the_written_traffic_follows_the_curve_night_morning_lunch_evening() -> None:
    per = {h: offered(slice_of("day-normal", h, 1 / 3)) for h in (3.5, 10.5, 12.3, 20.5)}
    assert per[3.5] * 5 < per[12.3] < per[10.5] < per[20.5] * 1.1
    assert per[12.3] < 0.85 * per[10.5]


def test_a_day_is_written_to_a_file_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--scenario", "day-normal", "--token", "t"]) == 1
    assert "write it with --out FILE" in capsys.readouterr().err


def test_double_11_opens_with_a_midnight_rush_of_several_times_a_normal_midnight() -> None:
    rush = offered(slice_of("day-double11", 0, 0.5))
    normal = offered(slice_of("day-normal", 0, 0.5))
    night = offered(slice_of("day-double11", 3, 0.5))
    assert 5 * normal <= rush <= 12 * normal
    assert rush > 5 * night


@pytest.mark.parametrize(("name", "hour"), [("day-normal", 20.5), ("day-double11", 0.1)])
def test_planned_peaks_are_staffed_waits_stay_short(name: str, hour: float) -> None:
    events = slice_of(name, hour, 0.5)
    chats = [e for e in events if e["type"] == "queue.stats" and e["queue"] == "presale-chat"]
    late = [e for e in chats if e["longest_wait_s"] > 30]
    assert chats and len(late) < 0.05 * len(chats)


def test_every_event_of_a_busy_hour_is_valid_in_time_order_and_a_day_stays_small() -> None:
    events = slice_of("day-double11", 20, 1)
    assert validate_batch(list(events[:10_000])).errors == []
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(events))
    size = sum(len(json.dumps(e, ensure_ascii=False)) + 1 for e in events)
    assert size * 24 < 100e6  # the busiest hour of the busiest day, all day long


def test_heartbeats_jitter_but_never_miss_three_intervals_outside_the_injected_loss() -> None:
    events = slice_of("day-normal", 12, 2)
    for source in ("chat-gateway", "acd"):
        beats = [e["ts"] for e in events if e["type"] == "heartbeat" and e["source"] == source]
        gaps = [b - a for a, b in itertools.pairwise(beats)]
        assert len({round(g, 1) for g in gaps}) > 5  # jitter
        assert max(gaps) < 15


def test_the_noise_is_there_single_failed_probes_pii_from_customers_crm_and_mentions() -> None:
    events = slice_of("day-normal", 9, 1)
    ivr = [e["status"] for e in events if e["type"] == "health" and e["component"] == "ivr"]
    assert "down" in ivr and ivr.count("down") <= 8  # the flap at 09:12, 2 minutes
    customer = [e for e in events
                if e["type"] == "agent.message" and e["direction"] == "from_customer"]  # fmt: skip
    assert any(find_pii(e["text"]) for e in customer)
    texts = " ".join(e["text"] for e in events if e["type"] == "agent.message")
    assert "JDVA" in texts and "SF" in texts and "****" in texts
    kinds = Counter(e["type"] for e in events)
    assert kinds["data.access"] > 100 and kinds["social.mention"] > 20


def test_the_nightly_export_is_one_export_by_the_service_account_at_half_past_two() -> None:
    events = slice_of("day-normal", 2.25, 0.5)
    exports = [e for e in events if e["type"] == "data.access" and e["action"] == "export"]
    assert [(e["actor"], e["ts"] % DAY_S) for e in exports] == [
        (SERVICE_ACCOUNT, (2.5 - 8) * 3600 % DAY_S)
    ]


@pytest.mark.parametrize("name", list(DAYS))
def test_expected_lists_every_injected_emergency_with_its_window(name: str) -> None:
    expected = expected_day(name)
    labels = Counter(e["label"] for e in expected)
    assert labels == {
        "promotion gone viral": 2,
        "order-api outage": 1,
        "opinion storm": 1,
        "chat-gateway heartbeat loss": 1,
        "agent pastes a customer's ID number": 1,
        "delivery delay left without a solution": 1,
        "agent pays out refunds in a burst": 1,
        "account claims refund-only again and again": 1,
    }
    start = day_world(name).start_ts
    assert all(start <= e["from_ts"] < e["to_ts"] <= start + DAY_S for e in expected)
    assert {e["kind"] for e in expected} == {"surge", "sla", "outage", "leak", "opinion"}
    assert [e["from_ts"] for e in expected] == sorted(e["from_ts"] for e in expected)


def test_the_leaking_agent_pastes_one_id_number_and_no_other_agent_leaks() -> None:
    leak = next(e for e in expected_day("day-normal") if e["label"].startswith("agent pastes"))
    events = slice_of("day-normal", 11, 0.25)
    agents = Counter()
    for e in events:
        if e["type"] == "agent.message" and e["direction"] == "to_customer":
            kinds = {f.kind for f in find_pii(e["text"])}
            if kinds:
                agents[e["agent_id"]] += 1
                assert "id_card" in kinds
    assert agents == {leak["subject"]: 1}


def test_a_one_hour_slice_replays_to_exactly_its_labelled_outage(tmp_path: Path) -> None:
    out = tmp_path / "slice.jsonl"
    args = ["simulate", "--scenario", "day-normal", "--window", "10:00-11:00", "--seed", "3"]
    assert main([*args, "--out", str(out)]) == 0
    labels = json.loads((tmp_path / "slice.expected.json").read_text("utf-8"))
    assert [(e["kind"], e["subject"]) for e in labels["expected"]] == [("outage", "order-api")]
    incidents = tmp_path / "incidents.jsonl"
    replay = ["replay", str(out), "--out", str(incidents), "--data-dir", str(tmp_path / "d")]
    assert main(replay) == 0
    opened = [json.loads(line) for line in incidents.read_text("utf-8").splitlines()]
    assert [(i["kind"], i["subject"]) for i in opened] == [("outage", "order-api")]
    window = labels["expected"][0]
    assert window["from_ts"] <= opened[0]["opened_at"] <= window["to_ts"]


def test_write_day_writes_the_same_file_twice(tmp_path: Path) -> None:
    first, _ = write_day("day-spring-festival", tmp_path / "a.jsonl", seed=2, start_s=0,
                         seconds=600)  # fmt: skip
    write_day("day-spring-festival", tmp_path / "b.jsonl", seed=2, start_s=0, seconds=600)
    assert first > 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.expected.json").read_bytes() == (
        tmp_path / "b.expected.json"
    ).read_bytes()


def test_the_scorer_reports_a_scenario_file_whose_entries_carry_no_label() -> None:
    from watchfloor.collector.simulator.backtest import report

    day = {"scenario": "all", "seed": 0, "expected": [{"kind": "leak", "subject": "agent-017",
                                        "why": "agent pastes an ID", "from_ts": 1000.0,
                                        "to_ts": 2000.0}]}  # fmt: skip
    incident = {"kind": "leak", "subject": "agent-017", "rule": "leak.pii_in_message",
                "opened_at": 1001.0, "title": "Customer data sent by agent-017",
                "evidence": {}}  # fmt: skip
    text = report(day, [incident])
    assert "TP 1, FN 0, FP 0" in text
    assert "agent pastes an ID" in text
