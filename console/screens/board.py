"""The board (default screen): the tiles of the registry, laid out and fed from the model.

The board knows no tile by name for layout and feeding: it reads
:data:`~console.widgets.board_tiles.BOARD_TILES` (order, placement, the slices
of the model that feed each tile, its title and freshness source). Every tile
shows the age of its data and turns stale (``-stale``) when its source stops
reporting or the link is down. Rows are updated in place by key.

The grid's rows are sized from what the tiles hold (:func:`fit_heights`): no
tile keeps blank lines while another cuts rows off. From 140 cells on the grid
has the registry's two columns; below that (``-narrow``) the tiles stack in one
column in registry order with a rule instead of a box, so that 80×24 stays readable.
"""

from __future__ import annotations

import time
from typing import ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import DataTable, Footer

from watchfloor.console import format as fmt
from watchfloor.console.messages import IncidentOpened, RunOpened
from watchfloor.console.screens.base import ConsoleScreen
from watchfloor.console.state import QUEUE_SORTS, Dirty
from watchfloor.console.widgets.board_tiles import BOARD_TILES
from watchfloor.console.widgets.queue_board import QueueBoard
from watchfloor.console.widgets.registry import BoardTile, TileRegistry, TileSpec
from watchfloor.console.widgets.status_bar import StatusBar
from watchfloor.console.widgets.tables import IncidentTable, RunTable
from watchfloor.console.widgets.tile import Tile

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


def room_first(rows: list[list[TileSpec]]) -> list[int]:
    """Row indexes, the row holding the tile that takes the spare lines (lowest ``room``) first."""
    if not rows:
        return []
    first = min(range(len(rows)), key=lambda i: min(s.room for s in rows[i]))
    return [first, *(i for i in range(len(rows)) if i != first)]


def wide_rows(left: list[TileSpec], right: list[TileSpec]) -> list[list[TileSpec]]:
    """The grid's rows from 140 cells on: the i-th tile of each column share row i."""
    count = max(len(left), len(right))
    return [[c[i] for c in (left, right) if i < len(c)] for i in range(count)]


def spans(column: list[TileSpec], rows: int) -> int:
    """Rows the last tile of ``column`` covers: the shorter column's last one fills the rest."""
    return rows - len(column) + 1


class BoardScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_selected", "key.open", show=False),
        Binding("s", "cycle_sort", "key.sort"),
        Binding("tab", "app.focus_next", "key.focus", show=False),
    ]

    def __init__(self, tiles: TileRegistry | None = None) -> None:
        super().__init__()
        self.tiles = tiles or BOARD_TILES
        self._narrow: bool | None = None
        """The arrangement in place (None before the first resize)."""

    def compose(self) -> ComposeResult:
        tr = self.console.tr
        yield StatusBar(tr("app.title") + " · " + tr("key.board"))
        for spec in self.tiles.strips():
            yield self._tile(spec)
        with Grid(id="board-main"):
            for spec in self.tiles.grid():
                yield self._tile(spec)
        yield Footer()

    def _tile(self, spec: TileSpec) -> Tile:
        widget = spec.make()
        widget.id = spec.name
        return Tile(widget, title=self.console.tr(spec.title_key), id=spec.tile_id)

    def on_mount(self) -> None:
        for spec in self.tiles.all():
            self.body(spec).setup(self.console.tr)
        # The duty floor acts on incidents: the list has the focus, its cursor on the worst one.
        focusable = [w for w in map(self._widget, self.tiles.all()) if w.can_focus]
        first = next((w for w in focusable if w.id == "incidents"), None)
        if first is not None or focusable:
            (first or focusable[0]).focus()
        self.tick(time.time())

    def _widget(self, spec: TileSpec) -> Widget:
        return self.query_one(f"#{spec.name}", Widget)

    def body(self, spec: TileSpec) -> BoardTile:
        """The widget of a tile, as the board speaks to it."""
        return cast(BoardTile, self._widget(spec))

    @property
    def queues(self) -> QueueBoard:
        return self.query_one("#queues", QueueBoard)

    @property
    def incidents(self) -> IncidentTable:
        return self.query_one("#incidents", IncidentTable)

    @property
    def runs(self) -> RunTable:
        return self.query_one("#runs", RunTable)

    # --- layout ---------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        narrow = event.size.width < NARROW_BELOW
        self.set_class(narrow, "-narrow")
        self.query_one(Footer).compact = narrow  # more keys fit
        if narrow != self._narrow:
            self._arrange(narrow)
        self.fit()

    def _arrange(self, narrow: bool) -> None:
        """Place the tiles: one column in order (narrow), or the registry's two columns."""
        self._narrow = narrow
        grid = self.query_one("#board-main", Grid)
        left, right = self.tiles.column("left"), self.tiles.column("right")
        rows = [[s] for s in self.tiles.grid()] if narrow else wide_rows(left, right)
        columns = 1 if narrow or not (left and right) else 2
        grid.styles.grid_size_columns, grid.styles.grid_size_rows = columns, len(rows)
        grid.styles.grid_columns = " ".join(["1fr"] * columns)
        order = [spec for row in rows for spec in row]
        for spec in order:  # grid cells fill in document order: put the tiles in it
            grid.move_child(self._tile_of(spec), after=grid.children[-1])
            column = left if spec in left else right
            last = not narrow and column[-1] is spec
            self._tile_of(spec).styles.row_span = spans(column, len(rows)) if last else 1
        for spec in self.tiles.strips():
            self._tile_of(spec).styles.height = spec.strip_lines[1 if narrow else 0]

    def _sized_rows(self, narrow: bool) -> list[list[TileSpec]]:
        """The grid's rows with the tiles whose needs size each (a spanning tile sizes none)."""
        if narrow:
            return [[s] for s in self.tiles.grid()]
        left, right = self.tiles.column("left"), self.tiles.column("right")
        rows = wide_rows(left, right)
        spanning = {c[-1].name for c in (left, right) if c and spans(c, len(rows)) > 1}
        return [[s for s in row if s.name not in spanning] for row in rows]

    def _tile_of(self, spec: TileSpec) -> Tile:
        return self.query_one(f"#{spec.tile_id}", Tile)

    def fit(self) -> None:
        """Size the grid's rows from the rows each tile holds (see the module's text)."""
        size = self.size
        if not size.height or self._narrow is None:
            return
        narrow = self._narrow
        border = 1 if narrow else 2
        strips = sum(s.strip_lines[1 if narrow else 0] for s in self.tiles.strips())
        total = size.height - 2 - strips  # status bar, footer, strips
        rows = self._sized_rows(narrow)
        ranked = room_first(rows)
        needs = [max(self.body(s).lines_wanted() for s in rows[i]) + border for i in ranked]
        heights = dict(zip(ranked, fit_heights(needs, total, MIN_ROWS + border), strict=True))
        rows_text = " ".join(str(heights[i]) for i in range(len(rows)))
        grid = self.query_one("#board-main", Grid)
        if str(grid.styles.grid_rows) != rows_text:
            grid.styles.grid_rows = rows_text
        self._fit_widths(narrow)

    def _fit_widths(self, narrow: bool) -> None:
        """Tell each tile its inner width; redraw the ones whose rows depend on it."""
        width = self.size.width
        inner = {"left": width - width // 2 - 2, "right": width // 2 - 2, "strip": width - 2}
        board, now = self.console.board, time.time()
        for spec in self.tiles.all():
            body = self.body(spec)
            if body.fit_width(width - 2 if narrow else inner[spec.wide]):
                body.sync(board, Dirty(reset=True), now)

    # --- feeding ----------------------------------------------------------------------------

    def draw(self, dirty: Dirty) -> None:
        board, now, tr = self.console.board, time.time(), self.console.tr
        before = [self.body(s).lines_wanted() for s in self.tiles.all()]
        for spec in self.tiles.all():
            if dirty.reset or any(getattr(dirty, feed) for feed in spec.feeds):
                body = self.body(spec)
                body.sync(board, dirty, now)
                note = body.title_note()
                self._tile_of(spec).base_title = f"{tr(spec.title_key)} {note}".rstrip()
        if before != [self.body(s).lines_wanted() for s in self.tiles.all()]:
            self.fit()

    def on_screen_resume(self) -> None:
        # Back from a dialog or a screen: ages and titles now, not at the next tick.
        super().on_screen_resume()
        if self.alive:
            self.tick(time.time())

    def tick(self, now: float) -> None:
        super().tick(now)
        board, tr = self.console.board, self.console.tr
        for spec in self.tiles.all():
            age = board.tile_age(spec.age_source, now)
            shown = None if age is None else fmt.duration(age, tr.lang)
            text = tr("tile.no_data") if shown is None else tr("tile.age", age=shown)
            self._tile_of(spec).show_freshness(
                text, board.tile_stale(spec.age_source, now), tr("tile.stale")
            )
            self.body(spec).tick(board, now)

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
            run_id = str(event.row_key.value)
            run = self.console.board.runs.get(run_id) or {}
            # A drill may run without an incident: it opens on its own.
            opened = RunOpened(run_id) if not run.get("incident") else None
            self.post_message(opened or IncidentOpened(str(run["incident"])))

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
