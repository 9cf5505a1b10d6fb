"""The queues table, drawn line by line: only visible rows are rendered (toolong's lesson).

With hundreds of queues each changing several times a second, a DataTable
re-renders every visible cell on any update. This widget keeps one rendered
line (a ``Strip``) per queue and rebuilds only the rows that changed, so a
frame costs the changed visible rows plus copies of the rest. The header is
line 0 and never scrolls; colours come from component classes (``.tcss``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from watchfloor.console import format as fmt
from watchfloor.console.i18n import Translator
from watchfloor.console.names import shown_name
from watchfloor.console.state import (
    QUEUE_SORTS,
    BoardState,
    Dirty,
    satisfaction_level,
    wait_level,
)

Cell = tuple[str, str | None]
"""A cell's text and its component class (or None)."""
COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("queue", "col.queue", 14, "left"),
    ("channel", "col.channel", 8, "left"),
    ("waiting", "col.waiting", 5, "right"),
    ("longest_wait_s", "col.longest", 7, "right"),
    ("service_level", "col.sl", 4, "right"),
    ("abandon_rate", "col.abandon", 5, "right"),
    ("satisfaction", "col.csat", 4, "right"),
    ("agents_available", "col.agents", 7, "right"),
    ("trend", "col.trend", 4, "left"),
)
"""(key, label, minimum width, alignment) of each column."""
QUEUE_WIDTH_MAX = 28
TREND_WIDTH_MAX = 30
"""The board keeps at most 30 waiting counts per queue: a wider sparkline shows nothing more."""
DYNAMIC_SORTS = frozenset(QUEUE_SORTS) - {"queue", "channel"}
"""Sort columns whose order changes with the data: re-sorted on every tick."""


class QueueBoard(ScrollView, can_focus=True):
    """Queue, channel, waiting, longest wait (against SLA), SL, abandon, satisfaction (last
    hour, against 95 % / 90 %), agents, trend."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "queue-board--header", "queue-board--cursor", "queue-board--odd", "level--ok",
        "level--warn", "level--breach", "level--stale",
    }  # fmt: skip
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "cursor(-1000000)", show=False),
        Binding("end", "cursor(1000000)", show=False),
    ]
    DEFAULT_CSS = "QueueBoard { height: 1fr; }"

    class Sorted(Message):
        """The user chose another sort column (header click or key)."""

        def __init__(self, column: str, reverse: bool) -> None:
            super().__init__()
            self.column, self.reverse = column, reverse

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.order: list[str] = []
        self.cells: dict[str, dict[str, Any]] = {}
        """Queue name -> its latest board row; turned into text only when drawn."""
        self.stale_rows: set[str] = set()
        self.sort_column = "queue"
        self.sort_reverse = False
        self.cursor = 0
        self._labels: list[str] = []
        self.lang = "en"
        """The interface language of durations (set by :meth:`setup`)."""
        self._widths = [w for _, _, w, _ in COLUMNS]
        self._strips: dict[tuple[str, bool, bool], Strip] = {}
        self._styles: dict[str, Style] = {}
        self._base: Style | None = None

    # --- the table's contents ------------------------------------------------------

    def setup(self, tr: Translator) -> None:
        self.lang = tr.lang
        self._labels = [tr(label) for _, label, _, _ in COLUMNS]
        # One more cell for the sort arrow of the sorted column's heading.
        self._widths = [max(w, cell_len(lbl) + 1) for (_, _, w, _), lbl
                        in zip(COLUMNS, self._labels, strict=True)]  # fmt: skip

    def label_of(self, column: str) -> str:
        """The heading of a column (``waiting`` -> ``Waiting`` or ``排队``)."""
        keys = [key for key, _, _, _ in COLUMNS]
        return self._labels[keys.index(column)] if column in keys else column

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def rows(self) -> dict[str, dict[str, Any]]:
        return self.cells

    def cells_of(self, row: dict[str, Any], stale: bool) -> list[Cell]:
        level = "stale" if stale else wait_level(row)
        return [
            (str(row.get("queue")), "level--stale" if stale else None),
            (shown_name("channel", row.get("channel") or "", self.lang), None),
            (str(row.get("waiting", 0)), None),
            (fmt.duration(row.get("longest_wait_s"), self.lang), f"level--{level}"),
            (fmt.percent(row.get("service_level")), None),
            (fmt.percent(row.get("abandon_rate")), None),
            (fmt.percent(row.get("satisfaction")), satisfaction_level(row)),
            (f"{row.get('agents_available', 0)}/{row.get('agents_busy', 0)}", None),
            (fmt.sparkline(row.get("trend") or [], self._widths[-1]), None),
        ]

    def _put(self, state: BoardState, name: str, now: float) -> None:
        row = state.queues[name]
        stale = state.row_stale(row, now)
        (self.stale_rows.add if stale else self.stale_rows.discard)(name)
        self.cells[name] = row
        for cursor in (False, True):
            for odd in (False, True):
                self._strips.pop((name, cursor, odd), None)

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        """Bring the rows up to date with the model; repaint only if a visible row changed."""
        if dirty.reset:
            self.cells.clear()
            self.stale_rows.clear()
            self._strips.clear()
            for name in state.queues:
                self._put(state, name, now)
            self._widen(state.queues)
            self.resort(state)
            return
        changed = False
        for name in dirty.queue:
            if name in state.queues:
                changed = changed or name not in self.cells
                self._put(state, name, now)
            elif self.cells.pop(name, None) is not None:
                changed = True
        if changed:  # rows came or went: the order changes
            self.resort(state)
        elif self._any_visible(dirty.queue):
            self.refresh()

    def on_resize(self) -> None:
        """Give the trend the width the tile has to spare (12 to 30 cells)."""
        spare = self.size.width - sum(self._widths[:-1]) - len(self._widths) - 1
        trend = max(COLUMNS[-1][2], min(TREND_WIDTH_MAX, spare))
        if trend != self._widths[-1]:
            self._widths[-1] = trend
            self._strips.clear()
            self.virtual_size = Size(sum(self._widths) + len(self._widths), len(self.order) + 1)
            self.refresh()

    def _widen(self, queues: dict[str, Any]) -> None:
        longest = max((cell_len(n) for n in queues), default=0)
        self._widths[0] = max(self._widths[0], min(QUEUE_WIDTH_MAX, longest))

    def _any_visible(self, names: set[str]) -> bool:
        top = int(self.scroll_offset.y)
        visible = self.order[top : top + max(0, self.size.height - 1)]
        return any(n in names for n in visible)

    def resort(self, state: BoardState) -> None:
        keep = self.cursor_key()
        self.order = [n for n in state.queue_order(self.sort_column, self.sort_reverse)
                      if n in self.cells]  # fmt: skip
        if keep in self.cells:
            self.cursor = self.order.index(keep)
        self.cursor = max(0, min(self.cursor, len(self.order) - 1))
        self._strips.clear()
        self.virtual_size = Size(sum(self._widths) + len(self._widths), len(self.order) + 1)
        self.refresh()

    def sort_by(self, column: str, state: BoardState) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = column
            self.sort_reverse = column not in ("queue", "channel")
        self.resort(state)
        self.post_message(self.Sorted(self.sort_column, self.sort_reverse))

    def tick(self, state: BoardState, now: float) -> None:
        self.mark_stale(state, now)
        if self.sort_column in DYNAMIC_SORTS:
            self.resort(state)

    def lines_wanted(self) -> int:
        return len(self.order) + 1

    def fit_width(self, cells: int) -> bool:
        """The trend column follows the widget's own size (``on_resize``)."""
        return False

    def title_note(self) -> str:
        return ""

    def mark_stale(self, state: BoardState, now: float) -> None:
        """Re-colour rows whose staleness flipped since they were drawn."""
        flipped = {
            n for n, row in state.queues.items()
            if n in self.cells and state.row_stale(row, now) != (n in self.stale_rows)
        }  # fmt: skip
        for name in flipped:
            self._put(state, name, now)
        if flipped:
            self.refresh()

    def cursor_key(self) -> str | None:
        return self.order[self.cursor] if 0 <= self.cursor < len(self.order) else None

    # --- drawing ----------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
        self._base = None

    def _style(self, cls: str | None) -> Style:
        if cls is None:
            return Style()
        style = self._styles.get(cls)
        if style is None:
            style = self._styles[cls] = self.get_component_rich_style(cls, partial=True)
        return style

    def _line(self, cells: list[Cell], base: Style) -> Strip:
        segments: list[Segment] = []
        for (text, cls), width, (_, _, _, align) in zip(cells, self._widths, COLUMNS,
                                                          strict=True):  # fmt: skip
            segments.append(Segment(" ", base))
            segments.append(Segment(fmt.pad(text, width, align), base + self._style(cls)))
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._base is None:  # computing it walks the ancestors: once per style change
            self._base = self.rich_style
        base = self._base
        if y == 0:
            arrow = "▼" if self.sort_reverse else "▲"
            header: list[Cell] = [
                (f"{label}{arrow}" if key == self.sort_column else label, None)
                for (key, _, _, _), label in zip(COLUMNS, self._labels, strict=True)
            ]
            style = base + self._style("queue-board--header")
            return self._line(header, style).crop_extend(0, width, style)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.order):
            return Strip.blank(width, base)
        name = self.order[index]
        is_cursor = index == self.cursor and self.has_focus
        odd = index % 2 == 1
        key = (name, is_cursor, odd)
        strip = self._strips.get(key)
        if strip is None or strip.cell_length != width:
            style = base
            if odd:
                style += self._style("queue-board--odd")
            if is_cursor:
                style += self._style("queue-board--cursor")
            cells = self.cells_of(self.cells[name], name in self.stale_rows)
            strip = self._line(cells, style).crop_extend(0, width, style)
            self._strips[key] = strip
        return strip

    # --- keys and mouse -------------------------------------------------------------------

    def action_cursor(self, step: int) -> None:
        if not self.order:
            return
        self.cursor = max(0, min(len(self.order) - 1, self.cursor + step))
        top, rows = int(self.scroll_offset.y), max(1, self.size.height - 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False)
        self.refresh()

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def on_click(self, event: Any) -> None:
        if event.y == 0:
            self._click_header(event.x)
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < len(self.order):
            self.cursor = index
            self.refresh()

    def _click_header(self, x: int) -> None:
        edge = 0
        for (key, _, _, _), width in zip(COLUMNS, self._widths, strict=True):
            edge += width + 1
            if x < edge:
                if key in QUEUE_SORTS:
                    self.app.call_later(self._sort_from_click, key)
                return

    def _sort_from_click(self, column: str) -> None:
        board = getattr(self.app, "board", None)
        if board is not None:
            self.sort_by(column, board)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
