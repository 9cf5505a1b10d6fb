"""The simulator: valid, deterministic traffic whose scenarios contain what they promise."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from watchfloor.cli import main
from watchfloor.collector.simulator import content
from watchfloor.collector.simulator.runner import FILE_START, write_file
from watchfloor.collector.simulator.scenarios import (
    EXPORT_ACTOR,
    LEAK_AGENT,
    NAMES,
    STORM_TOPIC,
    WARMUP_S,
    expected_incidents,
    generate,
)
from watchfloor.core.events import validate_batch
from watchfloor.security.pii import find_pii


@cache
def seconds(name: str, seed: int = 1) -> tuple[Any, ...]:
    return tuple(generate(name, seed=seed, start_ts=FILE_START))


def events_of(name: str, phase: str | None = None) -> list[dict[str, Any]]:
    return [e for s in seconds(name) if phase in (None, s.phase.name) for e in s.events]


@pytest.mark.parametrize("name", NAMES)
def test_every_scenario_produces_only_valid_events_in_time_order(name: str) -> None:
    events = events_of(name)
    result = validate_batch(events[:10_000])
    assert result.errors == []
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(events))
    assert len({(e["source"], e["id"]) for e in events}) == len(events)  # ids never repeat


def test_the_same_seed_gives_the_same_day_and_another_seed_another() -> None:
    first = [e for s in generate("agent-leak", seed=5, start_ts=FILE_START) for e in s.events]
    again = [e for s in generate("agent-leak", seed=5, start_ts=FILE_START) for e in s.events]
    other = [e for s in generate("agent-leak", seed=6, start_ts=FILE_START) for e in s.events]
    assert first == again
    assert first != other


def offered_per_5_min(events: list[dict[str, Any]], queue: str) -> float:
    offered = [e for e in events if e["type"] == "contact" and e["queue"] == queue
               and e["action"] == "offered"]  # fmt: skip
    span = (events[-1]["ts"] - events[0]["ts"]) or 1
    return len(offered) / span * 300


@pytest.mark.parametrize(("queue", "threshold_s"), [("presale-chat", 30), ("hotline", 15)])
def test_the_holiday_peak_floods_queues_and_pushes_waits_past_the_sla(
    queue: str, threshold_s: float
) -> None:
    warm, peak = events_of("double11-peak", "warm-up"), events_of("double11-peak", "peak")
    assert offered_per_5_min(peak, queue) > 3 * offered_per_5_min(warm, queue)
    waits = [
        e["longest_wait_s"] for e in peak if e["type"] == "queue.stats" and e["queue"] == queue
    ]
    assert max(waits) > 3 * threshold_s
    warm_waits = [e["longest_wait_s"] for e in warm
                  if e["type"] == "queue.stats" and e["queue"] == queue]  # fmt: skip
    assert sum(w > threshold_s for w in warm_waits) < 0.05 * len(warm_waits)


def test_the_outage_has_consecutive_failed_probes_of_the_order_api() -> None:
    down = [e for e in events_of("order-api-outage", "order-api-down")
            if e["type"] == "health" and e["component"] == "order-api"]  # fmt: skip
    assert len(down) >= 20 and {e["status"] for e in down} == {"down"}
    before = events_of("order-api-outage", "warm-up")
    assert {e["status"] for e in before if e["type"] == "health"} == {"up"}


def test_the_chat_gateway_falls_silent_and_comes_back() -> None:
    down = events_of("chat-gateway-down", "gateway-down")
    after = events_of("chat-gateway-down", "gateway-recovery")
    assert down and not [e for e in down if e["source"] == "chat-gateway"]
    assert [e for e in after if e["type"] == "heartbeat" and e["source"] == "chat-gateway"]
    assert [e for e in down if e["type"] == "heartbeat" and e["source"] == "acd"]


def test_the_opinion_storm_is_loud_negative_and_has_one_viral_post() -> None:
    warm, storm = events_of("opinion-storm", "warm-up"), events_of("opinion-storm", "storm")
    mentions = [e for e in storm if e["type"] == "social.mention" and e["topic"] == STORM_TOPIC]
    before = [e for e in warm if e["type"] == "social.mention" and e["topic"] == STORM_TOPIC]
    assert len(mentions) / 600 > 10 * len(before) / WARMUP_S
    viral = [e for e in mentions if e["followers"] >= 1_000_000]
    assert len(viral) == 1 and "曝光" in viral[0]["text"] and "投诉" in viral[0]["text"]


def test_only_the_leaking_agent_sends_personal_data_to_customers() -> None:
    leaks: Counter[str] = Counter()
    for name in ("agent-leak", "normal"):
        for event in events_of(name):
            if event["type"] == "agent.message" and event["direction"] != "from_customer":
                kinds = {f.kind for f in find_pii(event["text"])}
                if kinds:
                    leaks[event["agent_id"]] += 1
                    assert kinds <= {"id_card", "bank_card", "mobile"}
    assert set(leaks) == {LEAK_AGENT}
    customers = [e for e in events_of("normal")
                 if e["type"] == "agent.message" and e["direction"] == "from_customer"]  # fmt: skip
    assert any(find_pii(e["text"]) for e in customers)  # customers do send their own data


def test_agents_quote_order_numbers_some_of_which_pass_luhn() -> None:
    texts = " ".join(e["text"] for e in events_of("normal") if e["type"] == "agent.message")
    numbers = [w.strip("，。") for w in texts.split() if w.strip("，。").isdigit() and len(w) > 15]
    assert numbers and any(content.luhn_ok(n) for n in numbers)
    assert "SF" in texts and "****" in texts


def test_the_bulk_export_is_one_large_export_by_one_actor() -> None:
    exports = [e for e in events_of("bulk-export")
               if e["type"] == "data.access" and e["action"] == "export"]  # fmt: skip
    assert [(e["actor"], e["records"]) for e in exports] == [(EXPORT_ACTOR, 5000)]


def test_all_plays_the_peak_first_and_expects_every_scenario_incident() -> None:
    expected = expected_incidents("all", FILE_START)
    assert expected[0]["scenario"] == "double11-peak"
    assert {(e["kind"], e["subject"]) for e in expected} >= {
        ("surge", "presale-chat"), ("sla", "presale-chat"), ("outage", "order-api"),
        ("outage", "chat-gateway"), ("opinion", STORM_TOPIC), ("leak", LEAK_AGENT),
        ("leak", EXPORT_ACTOR),
    }  # fmt: skip
    assert expected[0]["from_ts"] == FILE_START + WARMUP_S
    assert expected_incidents("normal") == []


def test_simulate_out_writes_the_events_and_the_expected_incidents(tmp_path: Path) -> None:
    out = tmp_path / "peak.jsonl"
    assert main(["simulate", "--scenario", "double11-peak", "--seed", "3", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert validate_batch([json.loads(line) for line in lines[:5000]]).errors == []
    expected = json.loads((tmp_path / "peak.expected.json").read_text(encoding="utf-8"))
    assert expected["seed"] == 3 and len(expected["expected"]) == 4
    count, _ = write_file("double11-peak", tmp_path / "again.jsonl", seed=3)
    assert count == len(lines)
    assert (tmp_path / "again.jsonl").read_text(encoding="utf-8") == out.read_text("utf-8")


@pytest.mark.parametrize("name", ["normal", "all"])
def test_replaying_a_scenario_opens_exactly_the_expected_incidents(
    tmp_path: Path, name: str
) -> None:
    pytest.importorskip(
        "watchfloor.monitor.detectors.leak", reason="the leak detector is not built yet"
    )
    events, incidents = tmp_path / f"{name}.jsonl", tmp_path / "incidents.jsonl"
    write_file(name, events, seed=11)
    assert main(["replay", str(events), "--out", str(incidents), "--data-dir", str(tmp_path)]) == 0
    opened = [json.loads(line) for line in incidents.read_text("utf-8").splitlines()]
    expected = {(e["kind"], e["subject"]) for e in expected_incidents(name)}
    assert {(i["kind"], i["subject"]) for i in opened} == expected
