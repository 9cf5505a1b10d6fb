"""The pure engine: watermark, lateness, routing, one evaluation per second, state."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.api.doubles import (
    T0,
    BrokenDetector,
    CountingDetector,
    DownTwiceDetector,
    SilenceDetector,
    day_scenario,
    health,
    offered,
)
from watchfloor.core.events import Heartbeat
from watchfloor.monitor.engine import Engine
from watchfloor.monitor.lifecycle import Lifecycle


def summary(actions) -> list[tuple[str, str, str, float, str]]:
    return [(a.op, a.signal.fingerprint, a.signal.severity, a.at, a.reason) for a in actions]


def test_watermark_is_the_largest_event_time_minus_the_lateness() -> None:
    engine = Engine([CountingDetector()])
    engine.process([offered(T0 + 10), offered(T0 + 3)])
    assert engine.max_ts == T0 + 10
    assert engine.watermark == T0 + 5


def test_late_events_are_counted_by_type_and_not_folded_in() -> None:
    det = CountingDetector()
    engine = Engine([det])
    engine.process([offered(T0 + 20)])
    engine.process([offered(T0 + 14.9), offered(T0 + 15.0), health(T0 + 1, "crm", "down")])
    assert engine.stats.late_events == 2
    assert dict(engine.stats.late_by_type) == {"contact": 1, "health": 1}
    assert engine.stats.recent_late[0]["behind_s"] == 0.1
    engine.flush()
    assert [ts for ts, _ in det.seen] == [T0 + 15.0, T0 + 20]


def test_detectors_are_evaluated_once_per_second_of_event_time() -> None:
    det = CountingDetector()
    engine = Engine([det])
    engine.process([offered(T0 + 0.5)])
    engine.process([offered(T0 + 9.2)])
    assert det.evaluated == [T0 + s for s in range(1, 5)]
    engine.process([offered(T0 + 9.7)])
    assert det.evaluated == [T0 + s for s in range(1, 5)]


def test_events_reach_only_the_detectors_that_want_their_type() -> None:
    counting, down = CountingDetector(), DownTwiceDetector()
    engine = Engine([counting, down])
    engine.process([offered(T0), health(T0 + 1, "crm", "down"), health(T0 + 2, "crm", "down")])
    engine.flush()
    assert len(counting.seen) == 1
    assert down.streak == {"crm": 2}


def test_events_are_released_in_time_order_even_when_they_arrive_out_of_order() -> None:
    down = DownTwiceDetector()
    engine = Engine([down])
    # Arrival: down, up (earlier), down -> in time order: up, down, down = outage.
    actions = engine.process(
        [health(T0 + 2, "crm", "down"), health(T0 + 1, "crm", "up"), health(T0 + 3, "crm", "down")]
    )
    actions += engine.flush()
    assert summary(actions) == [("fire", "outage.component|crm", "critical", T0 + 4, "opened")]


def test_a_surge_opens_once_and_clears_when_it_ends() -> None:
    engine = Engine([CountingDetector(threshold=5)])
    actions = engine.process([offered(T0 + i * 0.5, n=i) for i in range(12)])
    actions += engine.process([offered(T0 + 40)])
    assert summary(actions) == [
        ("fire", "surge.test|presale-chat", "major", T0 + 3, "opened"),
        ("clear", "surge.test|presale-chat", "major", T0 + 14, "cleared"),
    ]


def test_the_processing_time_tick_notices_an_absence_when_nothing_arrives() -> None:
    engine = Engine([SilenceDetector()])
    engine.process([Heartbeat(ts=T0, source="chat-gw")])
    assert engine.tick(T0 + 30) == []
    actions = engine.tick(T0 + 37)
    assert summary(actions) == [("fire", "outage.heartbeat|chat-gw", "major", T0 + 31, "opened")]


def test_a_failing_detector_is_counted_and_does_not_stop_the_others() -> None:
    counting = CountingDetector(threshold=1)
    engine = Engine([BrokenDetector(), counting])
    actions = engine.process([offered(T0)])
    actions += engine.flush()
    assert len(counting.seen) == 1
    assert engine.stats.detector_errors >= 2
    assert [a.op for a in actions] == ["fire"]


def test_a_long_gap_is_not_evaluated_second_by_second() -> None:
    det = SilenceDetector()
    engine = Engine([det])
    engine.process([Heartbeat(ts=T0, source="a")])
    engine.process([Heartbeat(ts=T0 + 86_400, source="a")])
    assert engine.stats.evaluations < 10_000


def run(events, batches, snapshot_at=None) -> tuple[list, list]:
    """Feed ``events`` in batches of the given sizes; optionally restart from a snapshot."""

    def fresh() -> Engine:
        return Engine(
            [CountingDetector(threshold=4, for_s=2, keep_s=3), DownTwiceDetector()],
            lifecycle=Lifecycle(),
        )

    engine = fresh()
    actions, i = [], 0
    for n, size in enumerate(batches):
        actions += engine.process(events[i : i + size])
        i += size
        if snapshot_at == n:
            state = engine.snapshot()
            engine = fresh()
            engine.restore(state)
    actions += engine.process(events[i:])
    actions += engine.flush()
    down = engine.detectors[1]
    return summary(actions), sorted(down.streak.items())


def scenario(seed: int, n: int = 300) -> list:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = T0 + i * 0.2 + rnd.random() * 0.01
        if rnd.random() < 0.15:
            out.append(health(ts, rnd.choice(["crm", "ivr"]), rnd.choice(["down", "down", "up"])))
        else:
            out.append(offered(ts, rnd.choice(["q1", "q2"]), n=i))
    return out


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    jitter=st.lists(st.floats(0, 4.99), min_size=300, max_size=300),
    cuts=st.lists(st.integers(1, 50), min_size=1, max_size=20),
)
def test_out_of_order_events_within_the_lateness_give_the_same_incidents_as_sorted(
    seed: int, jitter: list[float], cuts: list[int]
) -> None:
    events = scenario(seed)
    # Each event arrives "late" by less than the lateness: it is never dropped.
    keys = [e.ts + j for e, j in zip(events, jitter, strict=True)]
    arrival = [e for _, e in sorted(zip(keys, events, strict=True), key=lambda p: p[0])]
    expected = run(events, [len(events)])
    got = run(arrival, cuts)
    assert got == expected
    assert expected[0], "the scenario should open incidents at all"


def test_a_restored_engine_continues_exactly_like_an_uninterrupted_one() -> None:
    events = scenario(7)
    assert run(events, [37] * 8, snapshot_at=3) == run(events, [len(events)])


def real_run(events, cut: int) -> list:
    from watchfloor.core.config import Config
    from watchfloor.monitor.service import build_engine

    engine = build_engine(Config())
    actions = []
    for i in range(0, len(events), cut):
        actions += engine.process(events[i : i + cut])
    actions += engine.flush()
    # Early fires come out when their event arrives, ahead of the evaluations of
    # earlier seconds: in evaluation order, each one just before its evaluation.
    ordered = sorted(
        enumerate(actions),
        key=lambda p: (p[1].at, not p[1].early, p[1].signal.fingerprint if p[1].early else p[0]),
    )
    return [(a.op, a.signal.fingerprint, a.signal.severity, a.at, a.early) for _, a in ordered]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 400))
def test_with_the_real_detectors_out_of_order_input_within_the_lateness_changes_nothing(
    seed: int, cut: int
) -> None:
    events = [e for batch in day_scenario() for e in batch]
    rnd = random.Random(seed)
    arrival = sorted(events, key=lambda e: e.ts + rnd.random() * 4.99)
    expected = real_run(events, len(events))
    assert {fp.split("|")[0] for _, fp, _, _, _ in expected} >= {"outage.component", "sla.queue"}
    assert any(early for *_, early in expected), "the outage should fire on arrival"
    assert real_run(arrival, cut) == expected


def test_a_sub_second_interval_evaluates_every_tenth_of_a_second() -> None:
    det = CountingDetector()
    engine = Engine([det], eval_interval_s=0.1)
    engine.process([offered(T0 + 0.05)])
    engine.process([offered(T0 + 5.42)])
    assert det.evaluated == [T0 + k / 10 for k in range(1, 5)]
    engine.flush()
    assert det.evaluated[-1] == T0 + 5.5


def test_a_surge_is_seen_within_a_tenth_of_a_second_past_the_lateness() -> None:
    engine = Engine([CountingDetector(threshold=5)], lateness_s=0.0, eval_interval_s=0.1)
    actions = engine.process([offered(T0 + i * 0.01, n=i) for i in range(5)])
    assert actions == []
    actions = engine.process([offered(T0 + 0.1)])
    assert [(a.op, a.at) for a in actions] == [("fire", T0 + 0.1)]


@pytest.mark.parametrize("interval", [1.0, 0.5, 0.1])
def test_out_of_order_input_gives_the_sorted_result_at_any_interval(interval) -> None:
    events = scenario(11)
    rnd = random.Random(3)
    arrival = sorted(events, key=lambda e: e.ts + rnd.random() * 4.99)

    def go(evs, cut):
        engine = Engine(
            [CountingDetector(threshold=4, for_s=2, keep_s=3), DownTwiceDetector()],
            eval_interval_s=interval,
        )
        out = []
        for i in range(0, len(evs), cut):
            out += engine.process(evs[i : i + cut])
        return summary(out + engine.flush())

    assert go(arrival, 7) == go(events, len(events))


def test_a_checkpoint_restores_under_a_different_evaluation_interval() -> None:
    first = Engine([CountingDetector()])
    first.process([offered(T0 + 0.5), offered(T0 + 9.2)])
    second = Engine([CountingDetector()], eval_interval_s=0.25)
    second.restore(first.snapshot())
    det = second.detectors[0]
    second.process([offered(T0 + 10.0)])
    assert det.evaluated == [T0 + 5.0]


def test_time_slices_cut_arrival_order_into_seconds_of_event_time() -> None:
    from watchfloor.core.events import Heartbeat
    from watchfloor.monitor.engine import time_slices

    ts = [0.0, 0.4, 0.9, 1.0, 1.2, 0.8, 3.5, 3.6, 9.0]
    events = [Heartbeat(ts=1_700_000_000.0 + t, source="s") for t in ts]
    sliced = [[round(e.ts - 1_700_000_000.0, 1) for e in part] for part in time_slices(events)]
    assert sliced == [[0.0, 0.4, 0.9], [1.0, 1.2, 0.8], [3.5, 3.6], [9.0]]
    assert [len(p) for p in time_slices(events, span_s=100, limit=4)] == [4, 4, 1]
    assert list(time_slices([])) == []


def test_the_reorder_buffer_is_one_batch_in_a_snapshot_and_older_snapshots_still_restore() -> None:
    """A busy engine's buffer is most of its checkpoint: it is written as one encoded batch;
    a checkpoint written as a map per event (before) restores to the same buffer."""
    from watchfloor.core.config import Config
    from watchfloor.core.events import Contact, decode_batch
    from watchfloor.monitor.service import build_engine

    t0 = 1_765_000_000.0
    events = [
        Contact(
            ts=t0 + i * 0.01,
            source="acd",
            queue=f"q{i % 3}",
            channel="chat",
            action="offered",
            contact_id=f"c{i}",
        )
        for i in range(300)
    ]
    engine = build_engine(Config())
    engine.process(events)
    snapshot = engine.snapshot()
    assert "buffer" not in snapshot
    assert decode_batch(snapshot["buffer_batch"]) == events  # all still within the lateness

    older = {k: v for k, v in snapshot.items() if k != "buffer_batch"}
    older["buffer"] = [e.to_map() for e in events]
    for state in (snapshot, older):
        restored = build_engine(Config())
        restored.restore(state)
        assert restored.buffered == len(events)
        assert restored.snapshot()["buffer_batch"] == snapshot["buffer_batch"]
