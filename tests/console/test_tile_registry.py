"""A tile registered by a test (never by the product) is laid out and fed by the live board.

The toy tile counts the open critical incidents. It is one widget plus one
registry entry (and its title string): the board places it from the entry on
wide and narrow terminals and calls it when the incidents it feeds on change,
here through the real API's live feed on a real Redis.
"""

from __future__ import annotations

from typing import Any

import pytest
from rich.text import Text
from textual.widgets import Static

from tests.console.conftest import ConsoleApi, wait_until
from tests.console.screen_text import screen_text
from watchfloor.console.app import ConsoleApp
from watchfloor.console.client import Backoff
from watchfloor.console.i18n import STRINGS, Translator
from watchfloor.console.state import BoardState, Dirty
from watchfloor.console.widgets.board_tiles import BOARD_TILES
from watchfloor.console.widgets.registry import BoardTile, TileDefaults, TileRegistry, TileSpec
from watchfloor.console.widgets.tile import Tile


class CriticalCount(TileDefaults, Static):
    """``3 critical open``: the toy tile's whole widget."""

    def setup(self, tr: Translator) -> None:
        self.count = -1

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        self.count = sum(1 for i in state.open_incidents() if i.get("severity") == "critical")
        self.update(Text(f"{self.count} critical open"))


TOY = TileSpec(
    name="critical",
    make=CriticalCount,
    title_key="tile.critical",
    feeds=frozenset({"incident"}),
    order=40,
    wide="left",
    freshness="incidents",
)


def with_toy() -> TileRegistry:
    tiles = BOARD_TILES.copy()
    tiles.register(TOY)
    return tiles


def console(api: ConsoleApi, tiles: TileRegistry) -> ConsoleApp:
    app = ConsoleApp(api.url, api.tokens["viewer"], tiles=tiles)
    assert app.feed is not None
    app.feed.backoff = Backoff(0.05, 0.3)
    return app


async def test_a_registered_tile_is_laid_out_and_fed_by_the_live_board(
    console_api: ConsoleApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STRINGS, "tile.critical", ("Critical now", "紧急事件"))
    app = console(console_api, with_toy())
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_until(pilot, lambda: app.board.seq is not None, "the snapshot")
        toy = app.screen.query_one("#critical", CriticalCount)
        assert isinstance(toy, BoardTile)
        await wait_until(pilot, lambda: toy.count == 0, "the toy tile fed by the snapshot")
        await console_api.fire("售前咨询", "critical")
        await console_api.fire("after-sales", "major")
        await wait_until(pilot, lambda: toy.count == 1, "the toy tile fed by a change")
        await pilot.pause(1.2)  # one tick: the title carries its age
        tile = app.screen.query_one("#tile-critical", Tile)
        assert tile.border_title is not None and tile.border_title.startswith("Critical now · ")
        assert "1 critical open" in screen_text(app)
        # Wide: the left column, below the runs; the incidents span down to its bottom.
        runs, incidents = (app.screen.query_one(f"#tile-{n}").region for n in ("runs", "incidents"))
        assert tile.region.x == runs.x and tile.region.y >= runs.bottom
        assert incidents.x >= tile.region.right and incidents.bottom == tile.region.bottom
        # Narrow: one column in registry order, the toy tile last.
        await pilot.resize_terminal(80, 30)
        await pilot.pause(0.3)
        tops = [app.screen.query_one(f"#tile-{n}").region.y
                for n in ("health", "queues", "incidents", "runs", "critical")]  # fmt: skip
        assert tops == sorted(tops) and len(set(tops)) == len(tops)
        assert "1 critical open" in screen_text(app)


def test_the_product_registers_no_toy_tile() -> None:
    assert [s.name for s in BOARD_TILES.all()] == ["health", "queues", "incidents", "runs"]


@pytest.mark.parametrize(("spec", "error"), [
    (TileSpec(name="runs", make=CriticalCount, title_key="t", feeds=frozenset({"run"}),
              order=1, wide="left"), "tile 'runs' is registered twice"),
    (TileSpec(name="x", make=CriticalCount, title_key="t", feeds=frozenset({"incidents"}),
              order=1, wide="left"), "tile 'x': feeds ['incidents'] are not board slices"),
])  # fmt: skip
def test_a_wrong_entry_is_refused_naming_the_tile_and_field(spec: TileSpec, error: Any) -> None:
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("]", r"\]")):
        BOARD_TILES.copy().register(spec)
