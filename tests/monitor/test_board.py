"""The queue and health boards: figures per queue, health rows, batched writes."""

from __future__ import annotations

import msgpack
import pytest

from watchfloor.core import keys
from watchfloor.core.events import Contact, Health, Heartbeat, QueueStats
from watchfloor.monitor.board import Board, read_health, read_queues
from watchfloor.monitor.detectors.base import Signal

T = 1_763_800_000.0


def stats(ts: float, waiting: int = 3, **counts) -> QueueStats:
    return QueueStats(
        ts=ts,
        source="acd",
        queue="q",
        channel="phone",
        waiting=waiting,
        longest_wait_s=12.0,
        agents_available=2,
        agents_busy=8,
        **counts,
    )


def contact(ts: float, action: str, wait_s: float | None = None, channel="chat") -> Contact:
    return Contact(
        ts=ts,
        source="chat",
        contact_id=f"c{ts}",
        queue="q",
        channel=channel,
        action=action,
        wait_s=wait_s,
    )


def feed(events) -> Board:
    board = Board()
    for event in events:
        board.observe(event)
    return board


@pytest.mark.parametrize(
    ("case", "events", "expected"),
    [
        (
            "snapshot counts give service level and abandon rate",
            [
                stats(T, offered=10, answered=8, abandoned=2, answered_in_sla=6),
                stats(T + 30, offered=10, answered=8, abandoned=0, answered_in_sla=8),
            ],
            {"offered_5m": 20, "service_level": 0.875, "abandon_rate": 0.1, "asa_s": None},
        ),
        (
            "contacts give them when snapshots carry no counts",
            [
                contact(T, "offered"),
                contact(T + 1, "offered"),
                contact(T + 2, "offered"),
                contact(T + 3, "answered", 10.0),
                contact(T + 4, "answered", 50.0),
                contact(T + 5, "abandoned"),
            ],
            {"offered_5m": 3, "service_level": 0.5, "abandon_rate": 0.3333, "asa_s": 30.0},
        ),
        (
            "snapshot counts win over contacts (no double counting)",
            [
                stats(T, offered=10, answered=10, abandoned=0, answered_in_sla=10),
                contact(T + 1, "offered", channel="phone"),
                contact(T + 2, "answered", 4.0, "phone"),
            ],
            {"offered_5m": 10, "service_level": 1.0, "abandon_rate": 0.0, "asa_s": 4.0},
        ),
        (
            "figures cover the last five minutes only",
            [
                stats(T, offered=50, answered=10, abandoned=40, answered_in_sla=0),
                stats(T + 400, offered=10, answered=10, abandoned=0, answered_in_sla=10),
            ],
            {"offered_5m": 10, "service_level": 1.0, "abandon_rate": 0.0},
        ),
        (
            "no answered contacts: no service level rather than a made-up one",
            [stats(T)],
            {"offered_5m": 0, "service_level": None, "abandon_rate": None},
        ),
    ],
)
def test_queue_figures(case, events, expected) -> None:
    row = feed(events).queue_row("q")
    assert {k: row[k] for k in expected} == expected


def test_the_trend_keeps_one_waiting_value_per_ten_seconds_and_at_most_thirty() -> None:
    board = feed([stats(T + i * 5, waiting=i) for i in range(100)])
    trend = board.queue_row("q")["trend"]
    assert len(trend) == 30
    assert trend[-3:] == [95, 97, 99]


@pytest.mark.parametrize(
    ("beats", "watermark", "status"),
    [
        ([0, 10, 20, 30], 55, "up"),
        ([0, 10, 20, 30], 61, "lost"),  # 3 x 10 s interval, minimum 30 s
        ([0, 20, 40], 95, "up"),
        ([0, 20, 40], 101, "lost"),  # 3 x 20 s
    ],
)
def test_a_heartbeat_is_lost_after_three_usual_intervals(beats, watermark, status) -> None:
    board = feed([Heartbeat(ts=T + b, source="chat-gw") for b in beats])
    board.evaluate(T + watermark)
    assert board.health["chat-gw"]["status"] == status


def test_health_rows_follow_components_and_silent_channels() -> None:
    board = feed(
        [
            Health(
                ts=T,
                source="probe",
                component="crm",
                status="down",
                latency_ms=3000.0,
                error_rate=0.5,
                message="timeout",
            )
        ]
    )
    silent = Signal(
        rule="outage.silent", kind="outage", subject="chat", severity="major", title="chat silent"
    )
    board.note_signals(T + 1, [silent])
    assert board.health["crm"]["status"] == "down"
    assert (board.health["chat"]["kind"], board.health["chat"]["status"]) == ("channel", "down")
    board.note_signals(T + 2, [])
    assert board.health["chat"]["status"] == "up"


async def test_flush_writes_each_changed_row_once_with_its_change(redis_client) -> None:
    board = feed(
        [stats(T + i) for i in range(50)]
        + [Heartbeat(ts=T, source="gw"), Heartbeat(ts=T + 1, source="gw")]
    )
    async with redis_client.pipeline(transaction=True) as pipe:
        assert board.flush(pipe) == 2
        await pipe.execute()
    async with redis_client.pipeline(transaction=True) as pipe:
        assert board.flush(pipe) == 0
    queues = await read_queues(redis_client)
    assert [q["queue"] for q in queues] == ["q"]
    assert queues[0]["updated_at"] == T + 49
    assert [h["subject"] for h in await read_health(redis_client)] == ["gw"]
    changes = await redis_client.xrange(keys.CHANGES)
    assert sorted(msgpack.unpackb(f[b"c"], raw=False)["kind"] for _, f in changes) == [
        "health",
        "queue",
    ]


def test_the_board_state_round_trips_through_a_snapshot() -> None:
    events = [
        stats(T, offered=10, answered=8, abandoned=2, answered_in_sla=6),
        Heartbeat(ts=T, source="gw"),
        Heartbeat(ts=T + 10, source="gw"),
    ]
    first = feed(events)
    second = Board()
    second.restore(msgpack.unpackb(msgpack.packb(first.snapshot()), raw=False))
    assert second.queue_row("q") == first.queue_row("q")
    second.evaluate(T + 45)
    assert second.health["gw"]["status"] == "lost"


def test_a_heartbeat_the_outage_detector_calls_lost_is_shown_lost() -> None:
    board = feed([Heartbeat(ts=T, source="gw")])
    lost = Signal(
        rule="outage.heartbeat",
        kind="outage",
        subject="gw",
        severity="major",
        title="No heartbeat from gw for 31 s",
    )
    board.note_signals(T + 12, [lost])
    assert (board.health["gw"]["status"], board.health["gw"]["message"]) == (
        "lost",
        "No heartbeat from gw for 31 s",
    )
    board.observe(Heartbeat(ts=T + 13, source="gw"))
    assert board.health["gw"]["status"] == "up"


def test_the_service_level_threshold_follows_the_rules_per_queue_and_channel() -> None:
    from watchfloor.monitor.rules import load_rules
    from watchfloor.monitor.service import _sla_threshold

    rules = load_rules(text='[sla.queues."vip-chat"]\nlongest_wait_s = 10\n')
    board = Board(threshold_for=_sla_threshold(rules))
    for queue in ("vip-chat", "presale-chat"):
        board.observe(
            Contact(
                ts=T,
                source="chat",
                contact_id=f"{queue}-1",
                queue=queue,
                channel="chat",
                action="answered",
                wait_s=20.0,
            )
        )
    assert board.queue_row("vip-chat")["sla_threshold_s"] == 10
    assert board.queue_row("vip-chat")["service_level"] == 0.0
    assert board.queue_row("presale-chat")["service_level"] == 1.0
