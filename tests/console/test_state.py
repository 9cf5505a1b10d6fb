"""The board model: snapshot plus changes, what changed, and freshness (no Textual)."""

from __future__ import annotations

import time

import pytest

from tests.console.samples import incident, queue_row, run, snapshot
from watchfloor.console.client import Backoff, live_url
from watchfloor.console.state import BoardState, overdue_steps, run_progress, wait_level


def fresh_board(**more) -> BoardState:
    board = BoardState(stale_after_s=30)
    board.connected = True
    message = snapshot(5)
    message.update(more)
    board.apply_snapshot(message, time.time())
    return board


def test_a_snapshot_replaces_everything_and_asks_for_a_full_redraw() -> None:
    board = fresh_board()
    board.queues["ghost"] = queue_row("ghost")
    dirty = board.apply_snapshot(snapshot(2, seq="9-0"), time.time())
    assert dirty.reset
    assert "ghost" not in board.queues
    assert len(board.queues) == 2
    assert board.seq == "9-0"


def test_changes_mark_only_their_rows_dirty_and_the_last_one_wins() -> None:
    board = fresh_board()
    dirty = board.apply_changes(
        [
            {"type": "change", "seq": "10-0", "kind": "queue", "op": "updated",
             "data": queue_row("after-sales", waiting=50)},
            {"type": "change", "seq": "10-1", "kind": "queue", "op": "updated",
             "data": queue_row("after-sales", waiting=60)},
            {"type": "change", "seq": "10-2", "kind": "incident", "op": "acknowledged",
             "data": incident("INC-1", "critical", state="acknowledged")},
        ],
        time.time(),
    )  # fmt: skip
    assert not dirty.reset
    assert dirty.queue == {"after-sales"}
    assert dirty.incident == {"INC-1"}
    assert not dirty.run and not dirty.health
    assert board.queues["after-sales"]["waiting"] == 60
    assert board.seq == "10-2"


def test_flag_and_engine_changes_are_kept_and_unknown_kinds_ignored() -> None:
    board = fresh_board()
    dirty = board.apply_changes(
        [
            {"kind": "flag", "op": "set", "data": {"name": "faq_bot", "value": "on"}},
            {"kind": "engine", "op": "updated", "data": {"lag_s": 3.0}},
            {"kind": "weather", "op": "updated", "data": {"id": "x"}},
        ],
        time.time(),
    )
    assert dirty.flags and dirty.engine
    assert board.flags["faq_bot"]["value"] == "on"
    assert board.engine["lag_s"] == 3.0


def test_open_incidents_are_worst_first_then_unacknowledged_then_oldest() -> None:
    board = BoardState()
    now = time.time()
    rows = [
        incident("A", "minor", opened_at=now - 10),
        incident("B", "critical", state="acknowledged", opened_at=now - 50),
        incident("C", "critical", opened_at=now - 5),
        incident("D", "major", state="resolved"),
        incident("E", "critical", opened_at=now - 500),
    ]
    board.apply_snapshot({"incidents": rows}, now)
    assert [i["id"] for i in board.open_incidents()] == ["E", "C", "B", "A"]


@pytest.mark.parametrize(
    ("channel", "wait", "threshold", "level"),
    [("chat", 10, None, "ok"), ("chat", 20, None, "warn"), ("chat", 31, None, "breach"),
     ("phone", 16, None, "breach"), ("phone", 8, None, "warn"), ("email", 3600, None, "ok"),
     ("email", 90000, None, "breach"), ("chat", 31, 60, "warn")],
)  # fmt: skip
def test_longest_wait_is_judged_against_the_channel_sla(channel, wait, threshold, level) -> None:
    row = queue_row("q", channel, longest=wait, sla_threshold_s=threshold)
    assert wait_level(row) == level


def test_run_progress_and_overdue_steps() -> None:
    now = time.time()
    r = run("R", "INC-1")
    assert run_progress(r) == (1, 3)
    assert [s["id"] for s in overdue_steps(r, now)] == ["extra-staff"]
    assert run_progress({"steps": []}) == (0, 0)


def test_tiles_turn_stale_when_their_source_is_silent_or_the_link_is_down() -> None:
    now = time.time()
    board = fresh_board()
    assert not any(board.tile_stale(t, now) for t in ("queues", "health", "incidents", "runs"))
    # Queue rows stop coming: only the queues tile goes stale.
    for row in board.queues.values():
        row["updated_at"] = now - 120
    assert board.tile_stale("queues", now)
    assert not board.tile_stale("health", now)
    assert board.row_stale(board.queues["after-sales"], now)
    # The link goes quiet (no ping for 15 s): everything is stale.
    assert all(board.tile_stale(t, now + 20) for t in ("health", "incidents", "runs"))
    board.connected = False
    assert board.tile_stale("incidents", now)


def test_ages_use_the_server_clock_when_ours_is_wrong() -> None:
    now = time.time()
    board = fresh_board(at=now + 3600.0)  # the server is an hour ahead of us
    for row in board.queues.values():
        row["updated_at"] = now + 3600.0 - 5
    assert board.tile_age("queues", now) == pytest.approx(5, abs=0.5)
    assert not board.tile_stale("queues", now)


def test_live_url_and_backoff() -> None:
    assert live_url("http://127.0.0.1:8471/", None) == "ws://127.0.0.1:8471/v1/live"
    assert live_url("https://h", "1-2") == "wss://h/v1/live?after=1-2"
    backoff = Backoff(0.5, 4.0)
    delays = [backoff.next() for _ in range(6)]
    assert delays[0] <= 0.5 and max(delays) <= 4.0 and delays[-1] >= 3.2
    backoff.reset()
    assert backoff.next() <= 0.5
