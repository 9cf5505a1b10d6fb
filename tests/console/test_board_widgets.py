"""The board's widgets fed with recorded live-feed messages (no API): sorting, in-place
updates, colours from CSS classes, staleness and literal text."""

from __future__ import annotations

import time

from tests.console.samples import queue_row, snapshot
from tests.console.screen_text import screen_text
from watchfloor.console.app import ConsoleApp
from watchfloor.console.messages import (
    ChangesReceived,
    LiveConnected,
    LiveDisconnected,
    SnapshotReceived,
)
from watchfloor.console.widgets.queue_board import QueueBoard
from watchfloor.console.widgets.tile import Tile


async def started(pilot, app: ConsoleApp, message: dict) -> QueueBoard:
    app.post_message(LiveConnected())
    app.post_message(SnapshotReceived(message))
    await pilot.pause(0.1)
    return app.screen.query_one(QueueBoard)


async def test_the_sort_key_cycles_columns_and_puts_the_longest_queue_first() -> None:
    app = ConsoleApp(None)
    async with app.run_test(size=(120, 30)) as pilot:
        board = await started(pilot, app, snapshot(5))
        assert board.order == sorted(board.order, key=str.casefold)
        await pilot.press("s")  # channel
        await pilot.press("s")  # waiting, largest first
        await pilot.pause()
        waiting = [app.board.queues[n]["waiting"] for n in board.order]
        assert board.sort_column == "waiting"
        assert waiting == sorted(waiting, reverse=True)


async def test_a_change_redraws_its_own_row_and_keeps_the_others_cached() -> None:
    app = ConsoleApp(None)
    async with app.run_test(size=(120, 30)) as pilot:
        board = await started(pilot, app, snapshot(5))
        await pilot.pause()
        cached_before = {key for key in board._strips if key[0] != "after-sales"}
        assert cached_before
        change = {"type": "change", "seq": "2-0", "kind": "queue", "op": "updated",
                  "data": queue_row("after-sales", waiting=77, longest=95.0)}  # fmt: skip
        app.post_message(ChangesReceived([change]))
        await pilot.pause(0.1)
        assert not any(key[0] == "after-sales" and key in cached_before for key in board._strips)
        assert cached_before <= set(board._strips)
        line = next(ln for ln in screen_text(app).splitlines() if " after-sales " in ln)
        assert " 77 " in line and "1m35s" in line


async def test_a_breached_wait_is_coloured_by_its_css_class() -> None:
    app = ConsoleApp(None)
    async with app.run_test(size=(120, 30)) as pilot:
        board = await started(pilot, app, snapshot(5))
        breach = board.get_component_rich_style("level--breach", partial=True)
        ok = board.get_component_rich_style("level--ok", partial=True)
        assert breach.color != ok.color
        cells = board.cells_of(queue_row("x", "phone", longest=40.0), stale=False)
        assert cells[3] == ("40s", "level--breach")
        cells = board.cells_of(queue_row("x", "email", longest=40.0), stale=False)
        assert cells[3] == ("40s", "level--ok")


async def test_names_are_shown_literally_not_as_markup() -> None:
    message = snapshot(1)
    message["queues"] = [queue_row("[b]vip[/b]", "chat")]
    message["incidents"][0]["title"] = "[red]not red[/red]"
    app = ConsoleApp(None)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app, message)
        text = screen_text(app)
        assert "[b]vip[/b]" in text and "[red]not red[/red]" in text


async def test_old_rows_and_a_lost_link_are_shown_stale() -> None:
    message = snapshot(3)
    message["queues"][0]["updated_at"] = time.time() - 600
    app = ConsoleApp(None)
    async with app.run_test(size=(120, 30)) as pilot:
        board = await started(pilot, app, message)
        app._tick(rearm=False)
        await pilot.pause()
        assert message["queues"][0]["queue"] in board.stale_rows
        assert not app.screen.query_one("#tile-incidents", Tile).has_class("-stale")
        app.post_message(LiveDisconnected("connection refused", 2.0))
        await pilot.pause()
        assert all(t.has_class("-stale") for t in app.screen.query(Tile))
        assert "disconnected, retry in 2s" in screen_text(app)
