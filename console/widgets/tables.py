"""The board's tables, each kept in sync with the model by row key (Dolphie's lesson).

A change updates only the cells of its row (``update_cell``); rows are added
or removed only when the set of keys changes, and a full rebuild happens only
after a snapshot. Colours come from component classes styled in ``.tcss``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from console import format as fmt
from console.i18n import Translator
from console.state import BoardState, Dirty, overdue_steps, run_progress, wait_level
from console.widgets.run_progress import progress_bar

LEVEL_CLASSES = {
    "level--ok",
    "level--warn",
    "level--breach",
    "level--stale",
    "sev--critical",
    "sev--major",
    "sev--minor",
    "sev--info",
    "state--open",
    "state--acknowledged",
    "state--resolved",
    "step--done",
    "step--late",
    "step--active",
}


class StyledTable(DataTable):
    """A DataTable whose cell colours come from CSS component classes."""

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | LEVEL_CLASSES

    def styled(self, text: str, cls: str | None) -> Text | str:
        if cls is None:
            return text
        return Text(text, style=self.get_component_rich_style(cls, partial=True))

    def keys_in_order(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    def cursor_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return str(key.value)

    def rebuild(self, rows: Iterable[tuple[str, list[Any]]]) -> None:
        """Replace all rows, keeping the cursor on the same key when it still exists."""
        keep = self.cursor_key()
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if keep is not None:
            with contextlib.suppress(RowDoesNotExist):
                self.move_cursor(row=self.get_row_index(keep), animate=False)

    def set_row(self, key: str, cells: list[Any]) -> None:
        for column, value in zip(self.columns, cells, strict=False):
            self.update_cell(key, column, value)


class QueueTable(StyledTable):
    """Queue, channel, waiting, longest wait (against SLA), SL, abandon, agents, trend."""

    COLUMNS = (
        "queue",
        "channel",
        "waiting",
        "longest_wait_s",
        "service_level",
        "abandon_rate",
        "agents_available",
        "trend",
    )
    LABELS = (
        "col.queue",
        "col.channel",
        "col.waiting",
        "col.longest",
        "col.sl",
        "col.abandon",
        "col.agents",
        "col.trend",
    )

    def setup(self, tr: Translator) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label in zip(self.COLUMNS, self.LABELS, strict=True):
            self.add_column(tr(label), key=key)
        self.sort_column = "queue"
        self.sort_reverse = False
        self.stale_rows: set[str] = set()

    def cells(self, row: dict[str, Any], stale: bool) -> list[Any]:
        name = str(row.get("queue"))
        level = "stale" if stale else wait_level(row)
        return [
            self.styled(name, "level--stale" if stale else None),
            str(row.get("channel") or ""),
            self.styled(str(row.get("waiting", 0)).rjust(4), None),
            self.styled(fmt.duration(row.get("longest_wait_s")).rjust(6), f"level--{level}"),
            fmt.percent(row.get("service_level")).rjust(4),
            fmt.percent(row.get("abandon_rate")).rjust(4),
            f"{row.get('agents_available', 0)}/{row.get('agents_busy', 0)}".rjust(7),
            fmt.sparkline(row.get("trend") or [], 12),
        ]

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        if dirty.reset:
            self.rebuild(
                (n, self.cells(state.queues[n], state.row_stale(state.queues[n], now)))
                for n in state.queue_order(self.sort_column, self.sort_reverse)
            )
            return
        added = False
        for name in dirty.queue:
            row = state.queues.get(name)
            if row is None:
                if name in self.rows:
                    self.remove_row(name)
                continue
            cells = self.cells(row, state.row_stale(row, now))
            if name in self.rows:
                self.set_row(name, cells)
            else:
                self.add_row(*cells, key=name)
                added = True
        if added:
            self.resort(state)

    def resort(self, state: BoardState) -> None:
        order = {n: i for i, n in enumerate(state.queue_order(self.sort_column, self.sort_reverse))}
        self.sort("queue", key=lambda cell: order.get(str(cell), 0))

    def sort_by(self, column: str, state: BoardState) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = column
            self.sort_reverse = column not in ("queue", "channel")
        self.resort(state)

    def mark_stale(self, state: BoardState, now: float) -> None:
        """Re-colour rows whose staleness flipped since they were drawn."""
        for name, row in state.queues.items():
            stale = state.row_stale(row, now)
            if name in self.rows and stale != (name in self.stale_rows):
                self.set_row(name, self.cells(row, stale))
        self.stale_rows = {n for n, r in state.queues.items() if state.row_stale(r, now)}


class IncidentTable(StyledTable):
    """Open incidents: severity, title, age, state, count; worst first."""

    def setup(self, tr: Translator) -> None:
        self.tr = tr
        self.cursor_type = "row"
        for key, label in (
            ("severity", "col.severity"),
            ("title", "col.title"),
            ("age", "col.age"),
            ("state", "col.state"),
            ("count", "col.count"),
        ):
            self.add_column(tr(label), key=key)

    def cells(self, inc: dict[str, Any], now: float) -> list[Any]:
        severity, state = inc.get("severity", "info"), inc.get("state", "open")
        return [
            self.styled(self.tr(f"sev.{severity}"), f"sev--{severity}"),
            fmt.truncate(str(inc.get("title") or inc.get("id")), 48),
            fmt.age(inc.get("opened_at"), now).rjust(6),
            self.styled(self.tr(f"state.{state}"), f"state--{state}"),
            str(inc.get("count", 1)).rjust(3),
        ]

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        now = state.server_now(now)
        wanted = state.open_incidents()
        keys = [str(i["id"]) for i in wanted]
        if dirty.reset or keys != self.keys_in_order():
            self.rebuild((str(i["id"]), self.cells(i, now)) for i in wanted)
            return
        for key in dirty.incident & set(keys):
            self.set_row(key, self.cells(state.incidents[key], now))

    def tick(self, state: BoardState, now: float) -> None:
        now = state.server_now(now)
        for key in self.keys_in_order():
            inc = state.incidents.get(key)
            if inc is not None:
                self.update_cell(key, "age", fmt.age(inc.get("opened_at"), now).rjust(6))


class RunTable(StyledTable):
    """Active playbook runs: title, incident, progress, late steps."""

    def setup(self, tr: Translator) -> None:
        self.tr = tr
        self.cursor_type = "row"
        for key, label in (
            ("playbook", "col.playbook"),
            ("incident", "col.incident"),
            ("progress", "col.progress"),
            ("late", "col.overdue"),
        ):
            self.add_column(tr(label), key=key)

    def cells(self, run: dict[str, Any], now: float) -> list[Any]:
        done, total = run_progress(run)
        late = overdue_steps(run, now)
        title = fmt.localized(
            run.get("title") or run.get("playbook") or run.get("id"), self.tr.lang
        )
        if run.get("drill"):
            title = f"[{self.tr('run.drill')}] {title}"
        late_text = ", ".join(str(s.get("id")) for s in late) or "—"
        return [
            fmt.truncate(title, 30),
            str(run.get("incident") or ""),
            progress_bar(done, total),
            self.styled(fmt.truncate(late_text, 24), "step--late" if late else None),
        ]

    def sync(self, state: BoardState, dirty: Dirty, now: float) -> None:
        now = state.server_now(now)
        wanted = state.active_runs()
        keys = [str(r["id"]) for r in wanted]
        if dirty.reset or keys != self.keys_in_order():
            self.rebuild((str(r["id"]), self.cells(r, now)) for r in wanted)
            return
        for key in dirty.run & set(keys):
            self.set_row(key, self.cells(state.runs[key], now))

    def tick(self, state: BoardState, now: float) -> None:
        now = state.server_now(now)
        for key in self.keys_in_order():
            run = state.runs.get(key)
            if run is not None:
                self.set_row(key, self.cells(run, now))
