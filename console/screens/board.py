"""The board (default screen): queues, health strip, open incidents, active runs.

Every tile shows the age of its data and turns stale (``-stale``) when its
source stops reporting or the link is down. Rows are updated in place by key.

The tiles sit in a grid whose rows are sized from what they hold
(:func:`fit_heights`): no tile keeps blank lines while another cuts rows off.
From 140 cells on, the queues and the runs share the left column and the
incidents take the whole right one; below that (``-narrow``) the tiles stack in
one column with a rule instead of a box, so that 80×24 stays readable.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.events import Resize
from textual.widgets import DataTable, Footer

from console import format as fmt
from console.messages import IncidentOpened
from console.screens.base import ConsoleScreen
from console.state import QUEUE_SORTS, Dirty
from console.widgets.health_strip import HealthStrip
from console.widgets.queue_board import QueueBoard
from console.widgets.status_bar import StatusBar
from console.widgets.tables import IncidentTable, RunTable
from console.widgets.tile import Tile

NARROW_BELOW = 140
MIN_ROWS = 2
"""Lines a table tile keeps at least: its heading and one row."""


def fit_heights(needs: list[int], total: int, minimum: int = MIN_ROWS) -> list[int]:
    """Share ``total`` lines between tiles wanting ``needs`` lines (max-min fair).

    A tile that needs less than its share gets what it needs and leaves the
    rest to the others; what is left at the end goes to the last tile that
    wanted more, else to the first one (the tile that scrolls gets the room).
    """
    heights = [0] * len(needs)
    waiting = sorted(range(len(needs)), key=lambda i: needs[i])
    left = total
    while waiting:
        share = left // len(waiting)
        index = waiting[0]
        if needs[index] <= share:
            heights[index] = max(needs[index], minimum)
            left -= heights[index]
            waiting.pop(0)
            continue
        for position, index in enumerate(waiting):
            heights[index] = max(share + (1 if position < left % len(waiting) else 0), minimum)
        left, waiting = 0, []
    if left > 0 and heights:
        heights[0] += left
    return heights


DYNAMIC_SORTS = frozenset(QUEUE_SORTS) - {"queue", "channel"}


class BoardScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_selected", "key.open", show=False),
        Binding("s", "cycle_sort", "key.sort"),
        Binding("tab", "app.focus_next", "key.focus", show=False),
    ]

    def compose(self) -> ComposeResult:
        tr = self.console.tr
        yield StatusBar(tr("app.title") + " · " + tr("key.board"))
        yield Tile(HealthStrip(id="health-strip"), title=tr("tile.health"), id="tile-health")
        with Grid(id="board-main"):
            yield Tile(QueueBoard(id="queues"), title=tr("tile.queues"), id="tile-queues")
            yield Tile(
                IncidentTable(id="incidents"), title=tr("tile.incidents"), id="tile-incidents"
            )
            yield Tile(RunTable(id="runs"), title=tr("tile.runs"), id="tile-runs")
        yield Footer()

    def on_mount(self) -> None:
        tr = self.console.tr
        for table in (self.queues, self.incidents, self.runs):
            table.setup(tr)
        self.queues.focus()
        self.tick(time.time())

    @property
    def queues(self) -> QueueBoard:
        return self.query_one("#queues", QueueBoard)

    @property
    def incidents(self) -> IncidentTable:
        return self.query_one("#incidents", IncidentTable)

    @property
    def runs(self) -> RunTable:
        return self.query_one("#runs", RunTable)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < NARROW_BELOW, "-narrow")
        self.query_one(Footer).compact = event.size.width < NARROW_BELOW  # more keys fit
        self.fit()

    def fit(self) -> None:
        """Size the grid's rows from the rows each table holds (see the module's text)."""
        size = self.size
        if not size.height:
            return
        narrow = size.width < NARROW_BELOW
        border = 1 if narrow else 2
        total = size.height - 2 - (2 if narrow else 3)  # status bar, footer, health tile
        need = {
            "queues": len(self.queues.order) + 1 + border,
            "incidents": self.incidents.row_count + 1 + border,
            "runs": self.runs.row_count + 1 + border,
        }
        grid = self.query_one("#board-main", Grid)
        least = MIN_ROWS + border
        if narrow:
            # Incidents first: what is left over goes to them.
            heights = fit_heights([need["incidents"], need["queues"], need["runs"]], total, least)
            rows = f"{heights[1]} {heights[0]} {heights[2]}"
        else:
            heights = fit_heights([need["runs"], need["queues"]], total, least)
            rows = f"{heights[1]} {heights[0]}"
        if str(grid.styles.grid_rows) != rows:
            grid.styles.grid_rows = rows
        widths = (max(20, self._side_width(narrow) - 33), max(14, self._left_width(narrow) - 45))
        if widths != (self.incidents.title_width, self.runs.title_width):
            self.incidents.title_width, self.runs.title_width = widths
            board, now = self.console.board, time.time()
            self.incidents.sync(board, Dirty(reset=True), now)
            self.runs.sync(board, Dirty(reset=True), now)

    def _side_width(self, narrow: bool) -> int:
        return self.size.width - 2 if narrow else self.size.width // 2 - 2

    def _left_width(self, narrow: bool) -> int:
        return self.size.width - 2 if narrow else self.size.width - self.size.width // 2 - 2

    def draw(self, dirty: Dirty) -> None:
        board, now = self.console.board, time.time()
        counts = (len(self.queues.order), self.incidents.row_count, self.runs.row_count)
        if dirty.reset or dirty.queue:
            self.queues.sync(board, dirty, now)
        if dirty.reset or dirty.incident:
            self.incidents.sync(board, dirty, now)
            self._count_incidents()
        if dirty.reset or dirty.run:
            self.runs.sync(board, dirty, now)
        if counts != (len(self.queues.order), self.incidents.row_count, self.runs.row_count):
            self.fit()
        if dirty.reset or dirty.health or dirty.flags or dirty.engine:
            self.query_one(HealthStrip).show(board.health, self.console.tr, board.flags,
                                             board.engine)  # fmt: skip

    def _count_incidents(self) -> None:
        tile = self.query_one("#tile-incidents", Tile)
        tile.base_title = f"{self.console.tr('tile.incidents')} ({self.incidents.row_count})"

    def tick(self, now: float) -> None:
        super().tick(now)
        board, tr = self.console.board, self.console.tr
        for name in ("queues", "health", "incidents", "runs"):
            tile = self.query_one(f"#tile-{name}", Tile)
            age = board.tile_age(name, now)
            text = tr("tile.no_data") if age is None else tr("tile.age", age=fmt.duration(age))
            tile.show_freshness(text, board.tile_stale(name, now), tr("tile.stale"))
        self.incidents.tick(board, now)
        self.runs.tick(board, now)
        self.queues.mark_stale(board, now)
        if self.queues.sort_column in DYNAMIC_SORTS:
            self.queues.resort(board)

    # --- actions ------------------------------------------------------------------------

    def action_cycle_sort(self) -> None:
        columns = list(QUEUE_SORTS)
        current = self.queues.sort_column
        following = columns[(columns.index(current) + 1) % len(columns)]
        self.queues.sort_by(following, self.console.board)
        label = self.queues.label_of(following)
        self.notify(f"{self.console.tr('key.sort')}: {label}", timeout=1.5)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is self.incidents:
            self.post_message(IncidentOpened(str(event.row_key.value)))
        elif event.data_table is self.runs:
            run = self.console.board.runs.get(str(event.row_key.value)) or {}
            if run.get("incident"):
                self.post_message(IncidentOpened(str(run["incident"])))

    def action_open_selected(self) -> None:
        """Enter on a queue opens the worst open incident about it, if there is one."""
        if self.focused is self.queues:
            name = self.queues.cursor_key()
            about = [i for i in self.console.board.open_incidents() if i.get("subject") == name]
            key = str(about[0]["id"]) if about else None
        else:
            key = self.incidents.cursor_key()
        if key is not None:
            self.post_message(IncidentOpened(key))
